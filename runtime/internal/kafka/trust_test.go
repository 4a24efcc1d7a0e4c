package kafka

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/runtime/internal/envelope"
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
