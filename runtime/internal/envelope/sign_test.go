package envelope

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

var (
	keyA = bytes.Repeat([]byte("a"), 32)
	keyB = bytes.Repeat([]byte("b"), 32)
	keyC = bytes.Repeat([]byte("c"), 40)
)

func request() Fields {
	return Fields{Kind: KindRequest, Version: "2", ID: "0123456789abcdef.7", Service: "calc", Method: "Add",
		Deadline: "2026-12-07T10:00:00.000000001Z", ReplyTo: "molgen.app.reply.front.x", Schema: "(int,int)(int)", Payload: []byte{4, 6}}
}

func mustKeys(t *testing.T, app [][]byte, services map[string][][]byte) *Keys {
	t.Helper()
	k, err := NewKeys(app, services, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSignVerify: a signature verifies over exactly the fields it was
// made over; changing any field, the kind or the payload makes it a
// forgery.
func TestSignVerify(t *testing.T) {
	ring := mustKeys(t, [][]byte{keyA}, nil).For("calc")
	f := request()
	sig := string(ring.Sign(nil, &f))
	if len(sig) != SigLen {
		t.Fatalf("signature %q is %d bytes, want %d", sig, len(sig), SigLen)
	}
	if err := ring.Verify(&f, sig); err != nil {
		t.Fatalf("Verify of its own signature: %v", err)
	}
	changes := map[string]func(*Fields){
		"kind":       func(f *Fields) { f.Kind = KindReply },
		"version":    func(f *Fields) { f.Version = "3" },
		"id":         func(f *Fields) { f.ID += "0" },
		"service":    func(f *Fields) { f.Service = "other" },
		"method":     func(f *Fields) { f.Method = "Sub" },
		"deadline":   func(f *Fields) { f.Deadline = "2099-12-07T10:00:00Z" },
		"reply-to":   func(f *Fields) { f.ReplyTo = "payments.ledger" },
		"schema":     func(f *Fields) { f.Schema = "" },
		"status":     func(f *Fields) { f.Status = "ok" },
		"payload":    func(f *Fields) { f.Payload = []byte{4, 7} },
		"no payload": func(f *Fields) { f.Payload = nil },
		// Fields are length-prefixed: moving a byte from one to the next
		// is a change.
		"boundary": func(f *Fields) { f.Service, f.Method = "calcA", "dd" },
	}
	for name, change := range changes {
		g := request()
		change(&g)
		if err := ring.Verify(&g, sig); !errors.Is(err, ErrForged) {
			t.Errorf("%s changed: Verify = %v, want ErrForged", name, err)
		}
	}
	for _, bad := range []struct {
		sig  string
		want error
	}{
		{"", ErrUnsigned},
		{"x", ErrBadSig},
		{sig[:8] + "-" + sig[9:], ErrBadSig},
		{sig[:9] + "!" + sig[10:], ErrBadSig},
		{sig + "A", ErrBadSig},
		{"00000000" + sig[8:], ErrUnknownID},
	} {
		if err := ring.Verify(&f, bad.sig); !errors.Is(err, bad.want) {
			t.Errorf("Verify(%q) = %v, want %v", bad.sig, err, bad.want)
		}
	}
}

// TestRotation: a ring signs with its first key and verifies with any of
// its keys, so a new key can be rolled out before it signs: nodes with
// [old, new]... then [new, old], then [new].
func TestRotation(t *testing.T) {
	f := request()
	old := mustKeys(t, [][]byte{keyA}, nil).For("calc")
	both := mustKeys(t, [][]byte{keyA, keyB}, nil).For("calc")
	swapped := mustKeys(t, [][]byte{keyB, keyA}, nil).For("calc")
	renewed := mustKeys(t, [][]byte{keyB}, nil).For("calc")
	byOld, bySwapped := string(old.Sign(nil, &f)), string(swapped.Sign(nil, &f))
	for _, c := range []struct {
		name string
		ring *Ring
		sig  string
		ok   bool
	}{
		{"[a,b] verifies a", both, byOld, true},
		{"[a,b] verifies b", both, bySwapped, true},
		{"[b,a] verifies a", swapped, byOld, true},
		{"[b] verifies b", renewed, bySwapped, true},
		{"[b] refuses a", renewed, byOld, false},
		{"[a] refuses b", old, bySwapped, false},
	} {
		if err := c.ring.Verify(&f, c.sig); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if err := renewed.Verify(&f, byOld); !errors.Is(err, ErrUnknownID) {
		t.Errorf("a signature by a key the ring lacks: %v, want ErrUnknownID", err)
	}
}

// TestServiceKeys: a service with a key of its own signs with it, others
// with the app's; a service key's signature does not verify as the app's.
func TestServiceKeys(t *testing.T) {
	k := mustKeys(t, [][]byte{keyA}, map[string][][]byte{"pay": {keyC}})
	f := request()
	f.Service = "pay"
	sig := string(k.For("pay").Sign(nil, &f))
	if err := k.For("pay").Verify(&f, sig); err != nil {
		t.Fatal(err)
	}
	if err := k.For("calc").Verify(&f, sig); err == nil {
		t.Error("the app's ring accepts a signature by the service's key")
	}
	if k.For("calc") == k.For("pay") {
		t.Error("calc and pay share a ring")
	}
	onlyPay := mustKeys(t, nil, map[string][][]byte{"pay": {keyC}})
	if onlyPay.For("calc") != nil {
		t.Error("without an app key, services without keys of their own are signed")
	}
	var none *Keys
	if none.For("calc") != nil || none.Missing("calc") != nil {
		t.Error("nil Keys sign")
	}
	if k, _ := NewKeys(nil, nil, nil); k != nil {
		t.Error("NewKeys without keys is not nil")
	}
	missing := errors.New("no key here")
	m, err := NewKeys([][]byte{keyA}, nil, map[string]error{"pay": missing})
	if err != nil || !errors.Is(m.Missing("pay"), missing) || m.Missing("calc") != nil {
		t.Errorf("Missing: %v %v %v", err, m.Missing("pay"), m.Missing("calc"))
	}
}

func TestShortKeysAreRefused(t *testing.T) {
	if _, err := NewKeys([][]byte{keyA[:31]}, nil, nil); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("a 31-byte app key: %v", err)
	}
	if _, err := NewKeys(nil, map[string][][]byte{"pay": {keyA, []byte("short")}}, nil); err == nil || !strings.Contains(err.Error(), "pay") {
		t.Errorf("a short service key: %v", err)
	}
}

func TestValidReplyTo(t *testing.T) {
	for topic, ok := range map[string]bool{
		"molgen.shop.reply.front.host-1-abc":            true,
		"molgen.shop.reply.front.a_b.C-9":               true,
		"molgen.shop.reply.":                            false,
		"molgen.shop.req.orders":                        false,
		"molgen.other.reply.front.x":                    false,
		"payments.ledger":                               false,
		"molgen.shop.reply.front.x y":                   false,
		"molgen.shop.reply.front/x":                     false,
		"molgen.shop.reply.front.é":                     false,
		"molgen.shop.reply." + strings.Repeat("x", 240): false,
		"molgen.shopx.reply.front.x":                    false,
	} {
		if got := ValidReplyTo("shop", topic); got != ok {
			t.Errorf("ValidReplyTo(shop, %.40q) = %v, want %v", topic, got, ok)
		}
	}
}

// FuzzVerify: no signature text makes Verify panic or accept a forgery.
func FuzzVerify(f *testing.F) {
	ring := mustKeys(&testing.T{}, [][]byte{keyA}, nil).For("calc")
	fields := request()
	good := string(ring.Sign(nil, &fields))
	f.Add(good, []byte{4, 6})
	f.Add("", []byte{})
	f.Add(good[:8]+"."+strings.Repeat("A", 43), []byte{1})
	f.Fuzz(func(t *testing.T, sig string, payload []byte) {
		g := request()
		g.Payload = payload
		err := ring.Verify(&g, sig)
		if err == nil && !(sig == good && bytes.Equal(payload, []byte{4, 6})) {
			t.Fatalf("Verify accepted %q over payload % x", sig, payload)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	ring := mustKeys(&testing.T{}, [][]byte{keyA}, nil).For("calc")
	f := request()
	buf := make([]byte, 0, SigLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = ring.Sign(buf[:0], &f)
	}
}

func BenchmarkVerify(b *testing.B) {
	ring := mustKeys(&testing.T{}, [][]byte{keyA}, nil).For("calc")
	f := request()
	sig := string(ring.Sign(nil, &f))
	b.ReportAllocs()
	for b.Loop() {
		if ring.Verify(&f, sig) != nil {
			b.Fatal("forged")
		}
	}
}
