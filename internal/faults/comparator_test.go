package main

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestInOrder: the comparator commits an offset only once every request
// before it has been answered, whatever order they finish in.
func TestInOrder(t *testing.T) {
	var q inOrder
	for _, o := range []int64{10, 11, 12, 13} {
		q.take(o)
	}
	steps := []struct {
		finish int64
		next   int64
		moved  bool
	}{
		{12, 0, false}, // 10 and 11 still run
		{10, 11, true}, // 10 done: commit up to 11
		{13, 11, false},
		{11, 14, true}, // 11, then 12 and 13 (done before): commit 14
	}
	for _, s := range steps {
		next, moved := q.finish(s.finish)
		if next != s.next || moved != s.moved {
			t.Fatalf("finish(%d) = %d, %v; want %d, %v", s.finish, next, moved, s.next, s.moved)
		}
	}
	if q.busy() {
		t.Errorf("busy after every request finished")
	}
	q.take(14)
	if !q.busy() {
		t.Errorf("not busy with a request running")
	}
}

// TestIdentifyReadsTheRequestID: the read-back keeps each record's request
// id, molgen's molgen-id and the comparator's id, and names the call of a
// comparator record from its value, encoded as molgen's.
func TestIdentifyReadsTheRequestID(t *testing.T) {
	m := &kgo.Record{Partition: 1, Offset: 7, Value: encStrings("f12.33.a", "b", "c"), Headers: hdrs("molgen-method", "Concat", "molgen-id", "ab12.99")}
	if r := identify(m, "f12", 0, 100); r.call != 33 || r.rid != "ab12.99" {
		t.Errorf("molgen record: %+v", r)
	}
	w := &kgo.Record{Partition: 2, Offset: 3, Value: binary.AppendVarint(nil, int64(whereBase)+41), Headers: hdrs(fhMethod, "Where", fhID, "app.7")}
	if r := identifyFranz(w, "g12", 100); r.call != 41 || r.rid != "app.7" || r.key != (reqKey{0, 2, 3}) {
		t.Errorf("comparator record: %+v", r)
	}
	c := &kgo.Record{Value: encStrings("g12.5.a", "b", "c"), Headers: hdrs(fhMethod, "Concat", fhID, "app.8")}
	if r := identifyFranz(c, "g12", 100); r.call != 5 {
		t.Errorf("comparator Concat: %+v", r)
	}
}
