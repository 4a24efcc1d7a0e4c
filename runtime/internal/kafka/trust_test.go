package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/transport"
)

func msgWith(kv ...string) *kgo.Record {
	m := &kgo.Record{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return m
}

// TestIncomingProblems: a request whose molgen header comes twice, or
// whose fields exceed their bounds, is malformed; trace headers over
// their bound are left out, the request is not.
func TestIncomingProblems(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{hVersion, "2", hMethod, "Add", hID, "a.1"}, ""},
		{[]string{hVersion, "2", hMethod, "Add", hMethod, "Sub"}, "header molgen-method given twice"},
		{[]string{hReplyTo, "a", hID, "1", hReplyTo, "b"}, "header molgen-reply-to given twice"},
		{[]string{hSig, "a", hSig, "b"}, "header molgen-sig given twice"},
		{[]string{hID, long(envelope.MaxID)}, ""},
		{[]string{hID, long(envelope.MaxID + 1)}, "molgen-id of 65 bytes"},
		{[]string{hMethod, long(envelope.MaxName + 1)}, "molgen-method of 257 bytes"},
		{[]string{hCaller, long(envelope.MaxCaller + 1)}, "molgen-caller of 513 bytes"},
	} {
		var in incoming
		in.read(msgWith(c.kv...))
		if got := in.problem(); !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
			t.Errorf("%q: problem %q, want %q", c.kv, got, c.want)
		}
	}
	var in incoming
	in.read(msgWith("traceparent", long(envelope.MaxTrace+1), "tracestate", "a=b", hMethod, "Add"))
	if len(in.trace) != 1 || in.trace[0].Key != "tracestate" || in.problem() != "" {
		t.Errorf("trace %+v, problem %q", in.trace, in.problem())
	}
}

// TestClip: what a message quotes of a header value is bounded.
func TestClip(t *testing.T) {
	if got := clip(strings.Repeat("y", 1<<20)); len(got) != 64+len("…") {
		t.Errorf("clip of 1 MiB: %d bytes", len(got))
	}
	if got := clip("2"); got != "2" {
		t.Errorf("clip(2) = %q", got)
	}
}

// TestOversizedIDIsNotAnswered: a request whose id is over its bound is
// bad, and not answered (its reply would carry the id back, as large as
// the attack); one with a well-formed id is answered.
func TestOversizedIDIsNotAnswered(t *testing.T) {
	app := kafkatest.App("bigid")
	tr := testTransport(t, app, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	handle := func(ctx context.Context, req *transport.Request) transport.Reply {
		return transport.Reply{Status: transport.StatusOK, Payload: req.Payload}
	}
	if err := tr.Serve(ctx, transport.Service{Name: "svc", Handle: handle, Slots: make(chan struct{}, 4)}); err != nil {
		t.Fatal(err)
	}
	replies := replyTopic(app, "hostile", "x")
	kafkatest.CreateTopic(t, replies, 1)
	deadline := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	for _, id := range []string{strings.Repeat("9", envelope.MaxID+1), "ok.1"} {
		kafkatest.Write(t, requestTopic(app, "svc"), &kgo.Record{Headers: []kgo.RecordHeader{
			{Key: hVersion, Value: []byte("2")}, {Key: hMethod, Value: []byte("M")}, {Key: hDeadline, Value: []byte(deadline)},
			{Key: hID, Value: []byte(id)}, {Key: hReplyTo, Value: []byte(replies)}, {Key: hSchema, Value: []byte("((")},
		}})
	}
	wait := time.Now().Add(15 * time.Second)
	for (tr.Stats().BadMessages < 1 || tr.Stats().Served < 1) && time.Now().Before(wait) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	recs := kafkatest.Records(t, replies)
	if len(recs) != 1 || string(headerOf(recs[0], hID)) != "ok.1" {
		var ids []string
		for _, r := range recs {
			ids = append(ids, clip(string(headerOf(r, hID))))
		}
		t.Fatalf("replies to %v, want only to ok.1 (stats %+v)", ids, tr.Stats())
	}
}

func headerOf(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// FuzzIncoming: no headers a record can carry make reading a request's
// fields panic, and what is accepted is within its bounds.
func FuzzIncoming(f *testing.F) {
	f.Add("molgen-version", "2", "molgen-method", "Add", "molgen-id", "a.1")
	f.Add("molgen-id", strings.Repeat("9", 100), "molgen-id", "x", "traceparent", "00-")
	f.Add("\xff", "\xfe", "molgen-sig", "", "", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		var in incoming
		in.read(msgWith(k1, v1, k2, v2, k3, v3))
		if in.problem() != "" {
			return
		}
		if len(in.id) > envelope.MaxID || len(in.method) > envelope.MaxName || len(in.caller) > envelope.MaxCaller {
			t.Fatalf("accepted fields over their bounds: %+v", in)
		}
		for _, h := range in.trace {
			if len(h.Value) > envelope.MaxTrace {
				t.Fatalf("accepted a trace header of %d bytes", len(h.Value))
			}
		}
		_, _ = parseDeadline(in.deadline)
		_ = envelope.ValidReplyTo("app", in.replyTo)
	})
}
