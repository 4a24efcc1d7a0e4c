package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/testsvc"
	molgen "github.com/molgen/molgen/runtime"
)

// molgenObserver is the Observer of the nodes newMolgen makes (-stages).
var molgenObserver molgen.Observer

// molgenCaller calls testsvc services through generated code, between
// nodes of this process placed as the topology says.
type molgenCaller struct {
	nodes  []*molgen.Node
	topics []string
	call   func(ctx context.Context, i int) error
}

func newMolgen(brokers []string, partitions int, topo topology) caller {
	return newMolgenWith(brokers, partitions, topo, nil)
}

// newMolgenSigned is newMolgen with every request and reply signed
// (placement security.signing with an app key): what a MAC costs.
func newMolgenSigned(brokers []string, partitions int, topo topology) caller {
	key := bytes.Repeat([]byte{0x42}, 32)
	return newMolgenWith(brokers, partitions, topo, func(o *molgen.Options) {
		o.Signing = &molgen.Signing{App: &molgen.KeySource{Keys: [][]byte{key}}}
	})
}

func newMolgenWith(brokers []string, partitions int, topo topology, edit func(*molgen.Options)) caller {
	app := kafkatest.App("bench")
	head := fmt.Sprintf("app: %s\nkafka:\n  partitions: %d\n", app, partitions)
	var yaml string
	switch {
	case topo.chain:
		// front -> posts (relay) -> users (calc): the middle service calls on.
		yaml = head + "nodes:\n  front: [codec]\n  posts: [relay]\n  users: [calc]\n"
	case topo.oneNode:
		yaml = head + "prefer_local: false\nnodes:\n  both: [calc, relay, codec]\n"
	default:
		yaml = head + "nodes:\n  server: [calc, relay]\n  client: [codec]\n"
	}
	pl, err := molgen.ParsePlacement("bench.yaml", []byte(yaml))
	check(err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := &molgenCaller{topics: []string{"molgen." + app + ".req.calc"}}
	mk := func(node string, reg func(*molgen.Node) error) *molgen.Node {
		o := molgen.Options{Placement: pl, Node: node, Brokers: brokers, Logger: quiet, Observer: molgenObserver}
		if edit != nil {
			edit(&o)
		}
		n, err := molgen.NewNode(o)
		check(err)
		check(reg(n))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		check(n.Start(ctx))
		m.nodes = append(m.nodes, n)
		return n
	}
	calc := func(n *molgen.Node) error { return testsvc.RegisterCalc(n, testsvc.NewCalc()) }
	codec := func(n *molgen.Node) error { return testsvc.RegisterCodec(n, testsvc.NewCodec()) }
	var front *molgen.Node
	switch {
	case topo.chain:
		m.topics = append(m.topics, "molgen."+app+".req.relay")
		mk("users", calc)
		mk("posts", func(n *molgen.Node) error {
			return testsvc.RegisterRelay(n, testsvc.NewRelay(testsvc.NewCalcClient(n)))
		})
		front = mk("front", codec)
		relay := testsvc.NewRelayClient(front)
		m.call = func(ctx context.Context, i int) error {
			k := i % 100
			v, err := relay.Sqrt(ctx, k*k)
			if err == nil && v != k {
				err = fmt.Errorf("molgen: sqrt(%d) = %d", k*k, v)
			}
			return err
		}
		return m
	case topo.oneNode:
		front = mk("both", func(n *molgen.Node) error {
			if err := calc(n); err != nil {
				return err
			}
			if err := testsvc.RegisterRelay(n, testsvc.NewRelay(testsvc.NewCalcClient(n))); err != nil {
				return err
			}
			return codec(n)
		})
	default:
		for range topo.servers {
			mk("server", func(n *molgen.Node) error {
				if err := calc(n); err != nil {
					return err
				}
				return testsvc.RegisterRelay(n, testsvc.NewRelay(testsvc.NewCalcClient(n)))
			})
		}
		front = mk("client", codec)
	}
	c := testsvc.NewCalcClient(front)
	m.call = func(ctx context.Context, i int) error {
		v, err := c.Add(ctx, i, 1)
		if err == nil && v != i+1 {
			err = fmt.Errorf("molgen: %d+1 = %d", i, v)
		}
		return err
	}
	return m
}

func (m *molgenCaller) add(ctx context.Context, i int) error { return m.call(ctx, i) }
func (m *molgenCaller) requestTopics() []string              { return m.topics }

func (m *molgenCaller) close() {
	for i := len(m.nodes) - 1; i >= 0; i-- {
		m.nodes[i].Close()
	}
}
