package kinds

import (
	"context"
	"net/netip"
	"time"

	"example.com/kinds/sub"
)

type Node struct {
	Value    int
	Next     *Node
	Children map[string]Node
}

type Pair[K comparable, V any] struct {
	Key K
	Val V
}

type Basket struct {
	Items   []sub.Item
	ByCode  map[sub.Code]*sub.Item
	Addr    netip.Addr
	Stamp   time.Time
	TTL     time.Duration
	Digest  [32]byte
	Flags   [2]bool
	Nothing struct{}
	Inline  struct {
		A, B int
	}
	Net   *netip.Prefix
	Pairs []Pair[string, int]
}

//molgen:service name=kinds-svc
type Kinds interface {
	Walk(ctx context.Context, n *Node) (Node, error)
	Fill(ctx context.Context, b Basket, names []string) (Basket, error)
	Scalars(ctx context.Context, a bool, b int8, c uint16, d float64, e string, f []byte) (uintptr, error)
	// Empties have values that encode as a constant byte.
	Empties(ctx context.Context, s []struct{}, m map[struct{}]struct{}, a [2][0]int) (map[string]struct{}, error)
}
