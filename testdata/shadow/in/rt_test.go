package shadow

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"example.com/shadow/api"
	dd "example.com/shadow/d"
	o "example.com/shadow/other"
	molgenruntime "github.com/molgen/molgen/runtime"
)

func roundTrip(t *testing.T, in, out molgenruntime.Message) {
	t.Helper()
	enc := molgenruntime.NewEncoder(nil)
	in.MolgenEncode(enc)
	if err := enc.Err(); err != nil {
		t.Fatal(err)
	}
	dec := molgenruntime.NewDecoder(enc.Data())
	out.MolgenDecode(dec)
	if err := dec.Finish(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed\n%#v\ninto\n%#v", in, out)
	}
}

func TestRoundTrips(t *testing.T) {
	roundTrip(t, &molgenRequest_Odd_Locals{A0: -3, A1: &v{Next: &v{}}, A2: m{"a": 1}, A3: e{"s"}, A4: []dd.T{{N: 2}}}, &molgenRequest_Odd_Locals{})
	roundTrip(t, &molgenRequest_Odd_Imports{A0: o.Thing{Y: 1}, A1: other{Y: 2}}, &molgenRequest_Odd_Imports{})
	roundTrip(t, &molgenRequest_Odd_Aliases{A0: api.Point{X: 1, Y: 2}, A1: struct{ A }{A{X: 3}}}, &molgenRequest_Odd_Aliases{})
	s := &struct{ A int }{A: 7}
	addr := netip.MustParseAddr("10.1.2.3")
	roundTrip(t, &molgenRequest_Odd_Pointers{A0: &s, A1: &addr}, &molgenRequest_Odd_Pointers{})
	roundTrip(t, &molgenRequest_Odd_Pointers{}, &molgenRequest_Odd_Pointers{})
	roundTrip(t, &molgenRequest_Odd_Phantom{A0: "acct-1", A1: Stamp(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))}, &molgenRequest_Odd_Phantom{})
	roundTrip(t, &molgenRequest_Odd_Empty{A0: []Hollow{{}, {}}, A1: map[string]struct{ A [0]int }{"k": {}}}, &molgenRequest_Odd_Empty{})
}

// names implements Named: it reports the arguments it was given in order.
type names struct{}

func (names) Names(_ context.Context, ctx string, req int, impl bool, p int8, a0 string, u uint, context int, len int, molgenX int, x int, keep string) (string, int, bool, int8, string, error) {
	return fmt.Sprintln(ctx, req, impl, p, a0, u, context, len, molgenX, x, keep), req, impl, p, keep, nil
}

// TestClientPassesArgumentsInOrder calls Named through its client: the
// parameters it renamed still reach the implementation in their places.
func TestClientPassesArgumentsInOrder(t *testing.T) {
	n, err := molgenruntime.NewNode(molgenruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterNamed(n, names{}); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	s, i, ok, p, k, err := NewNamedClient(n).Names(context.Background(), "c", 1, true, 2, "a", 3, 4, 5, 6, 7, "k")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c 1 true 2 a 3 4 5 6 7 k\n"; s != want || i != 1 || !ok || p != 2 || k != "k" {
		t.Fatalf("got %q %d %v %d %q, want %q 1 true 2 \"k\"", s, i, ok, p, k, want)
	}
}
