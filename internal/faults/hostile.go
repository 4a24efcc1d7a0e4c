package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// 11. Two instances serve a steady load while this program writes, as
// anyone with write rights on the request topic could, records made to
// hurt: schema headers nested megabytes deep (the parser died of a stack
// overflow that recover cannot catch, and every instance with it, at
// every restart), a hundred distinct schemas of megabytes (the verdict
// cache kept them all), long mismatching schemas (quadratic error text),
// requests that decode a megabyte into hundreds of megabytes (a million
// empty elements of a large struct), values nested far deeper than the
// codec takes, huge lengths, truncated and duplicated headers, invalid
// UTF-8, reply topics outside the app (another app's, a service's request
// topic, a topic outside molgen), and compressed batches that decompress
// to gigabytes. No instance may die, the load must not see a failure,
// the instances' memory must come back down, and nothing may be written
// to a topic outside the app's reply scheme.
func hostile(e *env) error {
	if err := e.up(e.kafkaAddr(), "a", "b"); err != nil {
		return err
	}
	e.startLoad()
	sleep(e.cfg.pre)
	base := e.serverRSS()
	e.faultStart = time.Now()
	peak, outside, err := e.attack()
	if err != nil {
		return err
	}
	e.faultEnd = time.Now()
	sleep(e.cfg.post)
	e.stopLoad()
	after := e.serverRSS()
	for _, p := range e.servers {
		if !p.Running() {
			e.problem("instance %s died during the attack:\n%s", p.Name, clip(p.Log(), 2000))
		}
	}
	ok, secs := e.okDuring(e.faultStart, e.faultEnd)
	e.note("legitimate calls during the attack: %d in %.1fs (%.0f/s)", ok, secs, float64(ok)/max(secs, 0.001))
	for name, b := range base {
		e.note("instance %s: RSS %d MB before, %d MB at the peak, %d MB after", name, b>>20, peak[name]>>20, after[name]>>20)
		// Go returns freed heap to the OS lazily: allow for it, but not
		// for what an amplifying request would have pinned (hundreds of
		// megabytes per request before decoding had a budget).
		if a := after[name]; a > b+rssSlack {
			e.problem("instance %s: RSS %d MB after the attack, over %d MB before plus %d MB", name, a>>20, b>>20, rssSlack>>20)
		}
		if p := peak[name]; p > b+rssPeakSlack {
			e.problem("instance %s: RSS reached %d MB during the attack, %d MB before", name, p>>20, b>>20)
		}
	}
	for topic, n := range outside {
		if n > 0 {
			e.problem("%d records written to %s, a topic outside the app's reply scheme", n, topic)
		}
	}
	return nil
}

// Memory bounds of the hostile scenario, beyond an instance's RSS before
// the attack.
const (
	rssSlack     = 150 << 20
	rssPeakSlack = 400 << 20
)

// serverRSS returns each running instance's resident set size.
func (e *env) serverRSS() map[string]int64 {
	out := map[string]int64{}
	for _, p := range e.servers {
		if p.Running() {
			out[p.Name] = rss(p.cmd.Process.Pid)
		}
	}
	return out
}

// rss reads a process's VmRSS from /proc (0 where there is none).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// okDuring counts the load's calls that succeeded between from and to.
func (e *env) okDuring(from, to time.Time) (int, float64) {
	n := 0
	for _, c := range e.rec.snapshot() {
		if c.err == nil && !c.end.IsZero() && !c.end.Before(from) && !c.end.After(to) {
			n++
		}
	}
	return n, to.Sub(from).Seconds()
}

// attack writes the hostile records, watching the instances' memory, and
// returns the peak RSS of each and the records found afterwards in the
// topics outside the app that requests named as their reply-to.
func (e *env) attack() (peak map[string]int64, outside map[string]int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	replies := "molgen." + e.app + ".reply.hostile.x"
	ledger := e.app + ".payments.ledger"
	otherApp := "molgen." + e.app + "x.reply.client.y"
	if err := createTopics(ctx, e.brokers, []string{replies, ledger, otherApp}, nil); err != nil {
		return nil, nil, err
	}
	// Records of megabytes compress to kilobytes: the broker takes them
	// (it bounds a batch by its compressed size).
	cl, err := plainClient(e.brokers, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	peak = map[string]int64{}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for name, r := range e.serverRSS() {
				peak[name] = max(peak[name], r)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-watched }()

	reqs := "molgen." + e.app + ".req.calc"
	soon := func() string { return time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339Nano) }
	n := 0
	ask := func(method string, value []byte, extra ...string) *kgo.Record {
		n++
		kv := append([]string{"molgen-version", "2", "molgen-method", method, "molgen-deadline", soon(),
			"molgen-id", fmt.Sprintf("hostile.%d", n), "molgen-reply-to", replies}, extra...)
		return &kgo.Record{Value: value, Headers: hdrs(kv...)}
	}
	write := func(what string, recs ...*kgo.Record) error {
		start := time.Now()
		if err := writeRecords(ctx, cl, reqs, recs...); err != nil {
			return fmt.Errorf("writing %s: %w", what, err)
		}
		e.note("wrote %s (%d records, %v)", what, len(recs), time.Since(start).Round(time.Millisecond))
		return nil
	}
	concat := encStrings("hostile.a", "b", "c")
	deep := "(" + strings.Repeat("*", 8<<20) + "int)()"
	steps := []struct {
		what string
		recs func() []*kgo.Record
	}{
		{"a schema header of 8 MB of nested pointers", func() []*kgo.Record {
			return []*kgo.Record{ask("Concat", concat, "molgen-schema", deep)}
		}},
		{"distinct 4 MB schemas", func() []*kgo.Record {
			var out []*kgo.Record
			for i := range e.hostileSchemas() {
				s := "(" + strconv.Itoa(i) + strings.Repeat("[]", 2<<20) + "int)()"
				out = append(out, ask("Concat", concat, "molgen-schema", s))
			}
			return out
		}},
		{"long mismatching schemas (60 KB valid, 300 KB over the limit)", func() []*kgo.Record {
			valid := "({" + strings.Repeat("int,", 15000) + "string})()"
			long := "({" + strings.Repeat("int,", 75000) + "string})()"
			return []*kgo.Record{ask("Concat", concat, "molgen-schema", valid), ask("Concat", concat, "molgen-schema", long)}
		}},
		{"100k levels of nesting in every nestable kind of schema", func() []*kgo.Record {
			var out []*kgo.Record
			for _, open := range []string{"*", "[]", "[3]", "map[int]", "{"} {
				s := "(" + strings.Repeat(open, 100000) + "int)()"
				out = append(out, ask("Concat", concat, "molgen-schema", s))
			}
			return out
		}},
		{"a 1 MB request of a million empty large structs", func() []*kgo.Record {
			v := binary.AppendUvarint(nil, 1_000_000+1)
			v = append(v, make([]byte, 1_000_000)...) // each an empty struct frame
			return []*kgo.Record{ask("Tally", v), ask("Tally", v)}
		}},
		{"a value nested 200k levels deep", func() []*kgo.Record {
			return []*kgo.Record{ask("Depth", deepTree(200_000))}
		}},
		{"huge lengths, truncated and invalid values", func() []*kgo.Record {
			huge := binary.AppendUvarint(nil, 1<<62)
			return []*kgo.Record{
				ask("Concat", append(huge, "abc"...)),
				ask("Concat", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
				ask("Tally", binary.AppendUvarint(nil, 1<<40)),
				ask("Concat", concat[:3]),
			}
		}},
		{"truncated, duplicated, oversized and invalid UTF-8 headers", func() []*kgo.Record {
			return []*kgo.Record{
				ask("Concat", concat, "molgen-deadline", "2026-"),
				ask("Concat", concat, "molgen-method", "Sqrt"),
				ask("\xff\xfe\xfd", concat),
				ask("Concat", concat, "molgen-caller", strings.Repeat("c", 1<<20)),
				ask("Concat", concat, "molgen-id", strings.Repeat("9", 1<<20)),
				ask("Concat", concat, "traceparent", strings.Repeat("t", 1<<20), "tracestate", strings.Repeat("s", 1<<20), "baggage", strings.Repeat("b=", 1<<19)),
				{Value: concat, Headers: hdrs("molgen-version", "2")},
				{Value: concat},
			}
		}},
		{"reply topics outside the app", func() []*kgo.Record {
			var out []*kgo.Record
			for _, to := range []string{ledger, otherApp, "molgen." + e.app + ".req.relay", "molgen." + e.app + ".reply."} {
				r := ask("Concat", concat)
				r.Headers = hdrs("molgen-version", "2", "molgen-method", "Concat", "molgen-deadline", soon(), "molgen-id", "misdirected", "molgen-reply-to", to)
				out = append(out, r)
			}
			return out
		}},
	}
	for _, s := range steps {
		if err := write(s.what, s.recs()...); err != nil {
			// The broker may refuse some (its own limits): that is no
			// failure of molgen's.
			e.note("%s: %v", s.what, clip(err.Error(), 160))
		}
	}
	// A compressed batch that decompresses to more than the instances
	// take (64 MiB): 100 records of 900 KB of zeros in one batch, which
	// the broker takes (each record under its limit, the batch a few
	// kilobytes compressed).
	bomber, err := plainClient(e.brokers, kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(256<<20), kgo.BrokerMaxWriteBytes(512<<20), kgo.MaxBufferedBytes(1<<30))
	if err != nil {
		return peak, nil, err
	}
	defer bomber.Close()
	var bomb []*kgo.Record
	zeros := make([]byte, 900<<10)
	for range 100 {
		r := ask("Concat", zeros)
		r.Partition = 0
		bomb = append(bomb, r)
	}
	if err := writeRecords(ctx, bomber, reqs, bomb...); err != nil {
		e.note("a compression bomb (one batch of 90 MB): %v", clip(err.Error(), 160))
	} else {
		e.note("wrote a compression bomb (one batch of 100 records, 90 MB of zeros)")
	}
	sleep(5 * time.Second) // let the instances read everything
	outside = map[string]int{}
	for _, topic := range []string{ledger, otherApp} {
		recs, err := readTopic(e.brokers, topic)
		if err != nil {
			return peak, nil, err
		}
		outside[topic] = len(recs)
	}
	recs, err := readTopic(e.brokers, "molgen."+e.app+".req.relay")
	if err != nil {
		return peak, nil, err
	}
	for _, r := range recs {
		if header(r, "molgen-id") == "misdirected" {
			outside["molgen."+e.app+".req.relay"]++
		}
	}
	return peak, outside, nil
}

// hostileSchemas is how many distinct 4 MB schemas the scenario writes.
func (e *env) hostileSchemas() int {
	if e.cfg.long {
		return 100
	}
	return 20
}

// deepTree encodes Depth's argument, a *Tree whose Left chain is levels
// deep, well formed: the codec must refuse it by its depth, not by a
// mistake in it. Each level is a struct frame: its length, an empty label,
// Left present and the next level, nil Children.
func deepTree(levels int) []byte {
	sizes := make([]int, levels) // sizes[i]: the bytes of level i's fields
	sizes[levels-1] = 3          // "", nil Left, nil Children
	for i := levels - 2; i >= 0; i-- {
		inner := sizes[i+1]
		sizes[i] = 1 + 1 + len(binary.AppendUvarint(nil, uint64(inner))) + inner + 1
	}
	var b bytes.Buffer
	b.WriteByte(1) // the pointer is not nil
	for i := 0; i < levels-1; i++ {
		b.Write(binary.AppendUvarint(nil, uint64(sizes[i])))
		b.Write([]byte{0, 1}) // empty label, Left present
	}
	b.Write([]byte{3, 0, 0, 0})
	for i := 0; i < levels-1; i++ {
		b.WriteByte(0) // nil Children
	}
	return b.Bytes()
}
