package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// 9. One instance serves a steady load while this program writes straight
// to its request topic (as docs/WIRE.md names it): malformed requests
// (each that names a reply topic must be answered with an error), a
// request the broker refuses as too large, a request whose reply is too
// large for its reply topic (it must be answered with ErrTooLarge), and
// orphaned requests (their reply topic does not exist, their deadline is
// an hour away). It also makes calls with oversized arguments through the
// generated client (each must fail with runtime.ErrTooLarge). The load
// must not see a single failure, and a SIGTERM afterwards must make the
// instance exit 0 within the bound.
func poison(e *env) error {
	if err := e.up(e.kafkaAddr(), "a"); err != nil {
		return err
	}
	e.startLoad()
	sleep(e.cfg.pre)
	e.faultStart = time.Now()
	want, small, err := e.inject()
	if err != nil {
		return err
	}
	e.oversizedCalls()
	e.faultEnd = time.Now()
	sleep(e.cfg.post)
	e.stopLoad()
	e.checkReplies(want, small)
	e.term(e.servers[0], true)
	return nil
}

// Sizes of the injected requests: under and over Kafka's default
// message.max.bytes (1 MiB), and over the client's own limit.
const (
	nearLimitBytes = 900_000   // a request the broker takes
	brokerTooLarge = 1_500_000 // a request the broker refuses
	callTooLarge   = 2 << 20   // a call's arguments, over the broker's limit
	clientTooLarge = 20 << 20  // a call's arguments, over the client's 16 MiB
	smallReplyMax  = 64 << 10  // max.message.bytes of the small reply topic
	orphans        = 20
	garbageRounds  = 5
)

// encStrings encodes strings as molgen's wire format does (uvarint
// length, then the bytes), i.e. the value of a Concat request.
func encStrings(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// inject writes the raw requests and returns the ids of the error
// replies expected on the reply topic, and the id of the request whose
// reply is too large for the small reply topic.
func (e *env) inject() (want map[string]string, small string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	replies, smallReplies := e.faultReplyTopics()
	if err := createTopics(ctx, e.brokers, []string{replies, smallReplies}, map[string][]string{smallReplies: {"max.message.bytes", fmt.Sprint(smallReplyMax)}}); err != nil {
		return nil, "", fmt.Errorf("creating the reply topics: %w", err)
	}
	cl, err := plainClient(e.brokers)
	if err != nil {
		return nil, "", err
	}
	defer cl.Close()
	reqs := "molgen." + e.app + ".req.calc"
	write := func(what string, msgs ...*kgo.Record) error {
		if err := writeRecords(ctx, cl, reqs, msgs...); err != nil {
			return fmt.Errorf("writing %s: %w", what, err)
		}
		return nil
	}

	soon := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	want = map[string]string{}
	var garbage []*kgo.Record
	for g := range garbageRounds {
		id := func(k int) string { return fmt.Sprintf("garbage.%d.%d", g, k) }
		random := make([]byte, 64)
		rand.Read(random)
		ask := func(k int, why string, kv ...string) []kgo.RecordHeader {
			want[id(k)] = why
			return hdrs(append(kv, "molgen-id", id(k), "molgen-reply-to", replies)...)
		}
		garbage = append(garbage,
			&kgo.Record{Value: random}, // no headers at all: logged, skipped
			&kgo.Record{Value: []byte{0xff, 0xff, 0xff}, Headers: ask(2, "undecodable value", "molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", soon)},
			&kgo.Record{Value: encStrings("garbage.v.a", "b", "c"), Headers: ask(3, "unknown version", "molgen-version", "99", "molgen-method", "Concat", "molgen-deadline", soon)},
			&kgo.Record{Value: nil, Headers: ask(4, "unknown method", "molgen-version", "2", "molgen-method", "Nope", "molgen-deadline", soon)},
			&kgo.Record{Value: encStrings("garbage.d.a", "b", "c"), Headers: ask(5, "invalid deadline", "molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", "tomorrow")},
			&kgo.Record{Value: append(binary.AppendUvarint(nil, 100), "abc"...), Headers: ask(6, "truncated value", "molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", soon)},
			&kgo.Record{Value: encStrings("garbage.s.a", "b", "c"), Headers: ask(7, "other schema", "molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", soon, "molgen-schema", "(int)(string)")},
			&kgo.Record{Value: append(binary.AppendVarint(nil, 5), 0), Headers: ask(8, "trailing bytes", "molgen-version", "2", "molgen-method", "Where", "molgen-deadline", soon)},
			// No reply-to and no id: nothing to answer; logged, skipped.
			&kgo.Record{Value: []byte{0xfe}, Headers: hdrs("molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", soon)},
			// Expired before it is read: skipped, not run, not answered.
			&kgo.Record{Value: encStrings("expired.1.a", "b", "c"), Headers: hdrs("molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", past, "molgen-id", id(10), "molgen-reply-to", replies)},
		)
	}
	if err := write("garbage", garbage...); err != nil {
		return nil, "", err
	}
	e.note("wrote %d malformed requests (%d name a reply topic and must be answered with an error)", len(garbage), len(want))

	// A request the broker takes whose reply the small reply topic refuses.
	third := nearLimitBytes / 3
	small = "big.1"
	big := &kgo.Record{
		Value:   encStrings("big."+strings.Repeat("x", third), strings.Repeat("y", third), strings.Repeat("z", third)),
		Headers: hdrs("molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", soon, "molgen-id", small, "molgen-reply-to", smallReplies),
	}
	if err := write("a near-limit request", big); err != nil {
		return nil, "", err
	}
	e.note("wrote a %d KB request whose reply is over its reply topic's %d KB limit", len(big.Value)/1000, smallReplyMax>>10)

	// A request over the broker's limit: the broker must refuse it.
	huge := &kgo.Record{
		Value:   encStrings("huge."+strings.Repeat("x", brokerTooLarge/3), strings.Repeat("y", brokerTooLarge/3), strings.Repeat("z", brokerTooLarge/3)),
		Headers: hdrs("molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", soon, "molgen-id", "huge.1", "molgen-reply-to", replies),
	}
	if err := write("an oversized request", huge); err != nil {
		e.note("a raw %d KB request: refused by the broker (%v)", len(huge.Value)/1000, clip(err.Error(), 120))
	} else {
		e.note("a raw %d KB request: the broker took it", len(huge.Value)/1000)
	}

	// Orphans: their reply topic does not exist, their deadline is far.
	b := make([]byte, 4)
	rand.Read(b)
	gone := "molgen." + e.app + ".reply.client.gone-" + hex.EncodeToString(b)
	far := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	var orphaned []*kgo.Record
	for i := range orphans {
		orphaned = append(orphaned, &kgo.Record{
			Value:   encStrings(fmt.Sprintf("orphan.%d.a", i), "b", "c"),
			Headers: hdrs("molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", far, "molgen-id", fmt.Sprintf("orphan.%d", i), "molgen-reply-to", gone),
		})
	}
	if err := write("orphaned requests", orphaned...); err != nil {
		return nil, "", err
	}
	e.note("wrote %d orphaned requests (reply topic %s does not exist; deadline in 1h)", orphans, gone)
	return want, small, nil
}

// oversizedCalls makes calls through the generated client whose request
// is over the broker's limit and over the client's own: each must fail
// promptly with runtime.ErrTooLarge.
func (e *env) oversizedCalls() {
	for _, size := range []int{callTooLarge, clientTooLarge} {
		c := &call{method: "Concat", extra: true, timeout: e.cfg.callTimeout,
			label: fmt.Sprintf("a Concat call with %d MiB of arguments", size>>20)}
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.callTimeout)
		c.start = time.Now()
		_, err := e.calc.Concat(ctx, strings.Repeat("x", size), "b", "c")
		c.end, c.err = time.Now(), err
		cancel()
		if err != nil {
			c.kind = kindOf(err)
		}
		e.rec.record(c)
		e.extras = append(e.extras, c)
		if c.kind != kindTooLarge {
			what := "succeeded"
			if err != nil {
				what = "failed with " + clip(err.Error(), 100)
			}
			e.problem("%s %s after %v, not runtime.ErrTooLarge", c.label, what, c.end.Sub(c.start).Round(time.Millisecond))
		}
	}
}

// checkReplies reads the reply topics: every malformed request that
// named one has its error reply, and the reply too large for the small
// topic was answered with ErrTooLarge.
func (e *env) checkReplies(want map[string]string, small string) {
	replies, smallReplies := e.faultReplyTopics()
	msgs, err := readTopic(e.brokers, replies)
	if err != nil {
		e.problem("reading the error replies: %v", err)
		return
	}
	got := map[string]bool{}
	notErr := 0
	for _, m := range msgs {
		id, status := header(m, "molgen-id"), header(m, "molgen-status")
		if status != "error" {
			notErr++
		}
		got[id] = true
	}
	var missing []string
	for id, why := range want {
		if !got[id] {
			missing = append(missing, id+" ("+why+")")
		}
	}
	sort.Strings(missing)
	e.note("error replies to malformed requests: %d of %d expected", len(want)-len(missing), len(want))
	if len(missing) > 0 {
		e.problem("%d malformed requests that named a reply topic got no error reply, e.g. %s", len(missing), missing[0])
	}
	if notErr > 0 {
		e.problem("%d replies to malformed requests did not have status error", notErr)
	}
	if got["garbage.0.10"] {
		e.problem("an expired request was answered")
	}
	msgs, err = readTopic(e.brokers, smallReplies)
	if err != nil {
		e.problem("reading the small reply topic: %v", err)
		return
	}
	answered := false
	for _, m := range msgs {
		if header(m, "molgen-id") != small {
			continue
		}
		answered = true
		v := string(m.Value)
		if header(m, "molgen-status") == "error" && strings.Contains(v, "runtime.ErrTooLarge") {
			e.note("the reply over its topic's limit was answered with an error: %s", clip(readableString(m.Value), 120))
		} else {
			e.problem("the reply over its topic's limit was answered with status %q, not an error matching runtime.ErrTooLarge (%s)", header(m, "molgen-status"), clip(readableString(m.Value), 120))
		}
	}
	if !answered {
		e.problem("the request whose reply is over its reply topic's limit got no reply (want an error matching runtime.ErrTooLarge)")
	}
}

// faultReplyTopics names the reply topics of the injected requests: the
// app's reply topics (molgen.<app>.reply.*), since servers answer only
// there.
func (e *env) faultReplyTopics() (replies, small string) {
	return "molgen." + e.app + ".reply.faults.replies", "molgen." + e.app + ".reply.faults.small-replies"
}

// readableString returns the first string of an encoded error reply.
func readableString(b []byte) string {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return fmt.Sprintf("%q", b)
	}
	return string(b[k : k+int(n)])
}
