package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestErrorReplyBytes pins the value of an error reply against bytes
// written from docs/WIRE.md: the message as a string, then the identities
// it matches as a non-nil []string (uvarint n+1, then each string).
func TestErrorReplyBytes(t *testing.T) {
	e := NewEncoder(nil)
	encodeError(e, fmt.Errorf("late: %w", context.DeadlineExceeded))
	want := []byte{
		31, // message length
		'l', 'a', 't', 'e', ':', ' ', 'c', 'o', 'n', 't', 'e', 'x', 't', ' ', 'd', 'e', 'a', 'd', 'l', 'i', 'n', 'e', ' ', 'e', 'x', 'c', 'e', 'e', 'd', 'e', 'd',
		2,  // one identity: n+1
		24, // its length
		'c', 'o', 'n', 't', 'e', 'x', 't', '.', 'D', 'e', 'a', 'd', 'l', 'i', 'n', 'e', 'E', 'x', 'c', 'e', 'e', 'd', 'e', 'd',
	}
	if !bytes.Equal(e.Data(), want) {
		t.Fatalf("error reply value\n got % x\nwant % x", e.Data(), want)
	}
	rerr, err := decodeError(NewDecoder(want), "s", "M")
	if err != nil {
		t.Fatal(err)
	}
	if rerr.Error() != "late: context deadline exceeded" || !errors.Is(rerr, context.DeadlineExceeded) {
		t.Fatalf("decoded %q, errors.Is DeadlineExceeded %t", rerr.Error(), errors.Is(rerr, context.DeadlineExceeded))
	}

	// No identity: an empty, non-nil list.
	e = NewEncoder(nil)
	encodeError(e, errors.New("x"))
	if want := []byte{1, 'x', 1}; !bytes.Equal(e.Data(), want) {
		t.Fatalf("error reply without identities: % x, want % x", e.Data(), want)
	}
}

// FuzzErrorReply: no bytes make reading an error reply panic, however the
// reply lies about its lengths.
func FuzzErrorReply(f *testing.F) {
	f.Add(errorReply(errors.New("boom")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		re, err := decodeError(d, "svc", "M")
		if err == nil && re == nil {
			t.Fatal("no error and no result")
		}
	})
}
