package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/internal/kafkatest"
)

// franz is request/reply written as well as franz-go allows: no linger,
// acks=all (idempotent producing, up to 5 produce requests in flight per
// broker), a consumer group on each request topic with franz-go's
// autocommit, and one reply topic per node read from a direct partition.
// Each handler runs in its own goroutine and writes its reply
// asynchronously. Its nodes mirror molgen's in each topology.
type franz struct {
	nodes  []*fnode
	front  *fnode
	topics []string
	call   func(ctx context.Context, i int) error
}

// fnode is one franz-go "node": a client that produces (and is the group
// member of the topic it serves, if any) and a client reading its reply
// topic.
type fnode struct {
	cl, replies *kgo.Client
	replyTopic  string
	handle      func(ctx context.Context, in []byte) ([]byte, error)
	ctx         context.Context
	stop        context.CancelFunc
	wg          sync.WaitGroup

	pending pendingCalls
}

func newFranz(brokers []string, partitions int, topo topology) caller {
	app := kafkatest.App("franz")
	calcTopic, relayTopic := app+".req.calc", app+".req.relay"
	f := &franz{topics: []string{calcTopic}}
	topics := map[string]int{calcTopic: partitions}
	if topo.chain {
		f.topics = append(f.topics, relayTopic)
		topics[relayTopic] = partitions
	}
	n := 0
	reply := func() string {
		n++
		t := fmt.Sprintf("%s.reply.%d", app, n)
		topics[t] = 1
		return t
	}
	add := func(ctx context.Context, in []byte) ([]byte, error) {
		a, k := binary.Varint(in)
		b, _ := binary.Varint(in[k:])
		return binary.AppendVarint(nil, a+b), nil
	}
	// The topics first: reply topics are read from their start.
	type spec struct {
		reply, serve string
		handle       func(context.Context, []byte) ([]byte, error)
	}
	var specs []spec
	switch {
	case topo.chain:
		specs = []spec{{reply: reply()}, {reply: reply(), serve: relayTopic}, {serve: calcTopic, handle: add}}
	case topo.oneNode:
		specs = []spec{{reply: reply(), serve: calcTopic, handle: add}}
	default:
		specs = []spec{{reply: reply()}}
		for range topo.servers {
			specs = append(specs, spec{serve: calcTopic, handle: add})
		}
	}
	createTopics(brokers, topics)
	for _, s := range specs {
		f.nodes = append(f.nodes, newFNode(brokers, s.reply, s.serve, app+".group."+s.serve, s.handle))
	}
	f.front = f.nodes[0]
	if topo.chain {
		mid := f.nodes[1]
		// The middle service calls on: sqrt through the calc service.
		mid.handle = func(ctx context.Context, in []byte) ([]byte, error) {
			return mid.call(ctx, calcTopic, in)
		}
		f.call = func(ctx context.Context, i int) error {
			k := i % 100
			out, err := f.front.call(ctx, relayTopic, binary.AppendVarint(binary.AppendVarint(nil, int64(k)), 0))
			return checkSum(out, err, k)
		}
		return f
	}
	f.call = func(ctx context.Context, i int) error {
		out, err := f.front.call(ctx, calcTopic, binary.AppendVarint(binary.AppendVarint(nil, int64(i)), 1))
		return checkSum(out, err, i+1)
	}
	return f
}

func checkSum(out []byte, err error, want int) error {
	if err != nil {
		return err
	}
	v, n := binary.Varint(out)
	if n <= 0 || int(v) != want {
		return fmt.Errorf("reply %d, want %d", v, want)
	}
	return nil
}

// newFNode starts a node that reads replyTopic (when set) and serves
// serveTopic (when set) in group.
func newFNode(brokers []string, replyTopic, serveTopic, group string, handle func(context.Context, []byte) ([]byte, error)) *fnode {
	n := &fnode{replyTopic: replyTopic, handle: handle}
	n.ctx, n.stop = context.WithCancel(context.Background())
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if os.Getenv("RPCBENCH_FRANZ_LOG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	if serveTopic != "" {
		cl, err := kgo.NewClient(append(opts,
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(serveTopic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(100*time.Millisecond),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second),
		)...)
		check(err)
		n.cl = cl
		n.wg.Add(1)
		go n.serve()
	}
	if replyTopic != "" {
		replies, err := kgo.NewClient(append(opts,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{replyTopic: {0: kgo.NewOffset().AtStart()}}),
		)...)
		check(err)
		n.replies = replies
		if n.cl == nil {
			n.cl = replies // a caller only: one client produces and reads replies
		}
		n.wg.Add(1)
		go n.receive()
	}
	return n
}

// serve runs each fetched request in its own goroutine.
func (n *fnode) serve() {
	defer n.wg.Done()
	for {
		fs := n.cl.PollFetches(n.ctx)
		if fs.IsClientClosed() || n.ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			go n.answer(r)
		})
	}
}

func (n *fnode) answer(r *kgo.Record) {
	var id, replyTo []byte
	for _, h := range r.Headers {
		switch h.Key {
		case "id":
			id = h.Value
		case "reply-to":
			replyTo = h.Value
		}
	}
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	out, err := n.handle(ctx, r.Value)
	if err != nil {
		return // the caller times out; the benchmark counts it failed
	}
	n.cl.Produce(n.ctx, &kgo.Record{Topic: string(replyTo), Value: out, Headers: []kgo.RecordHeader{{Key: "id", Value: id}}}, nil)
}

// receive hands each reply to the call waiting for it.
func (n *fnode) receive() {
	defer n.wg.Done()
	for {
		fs := n.replies.PollFetches(n.ctx)
		if fs.IsClientClosed() || n.ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			var id uint64
			for _, h := range r.Headers {
				if h.Key == "id" {
					id, _ = strconv.ParseUint(string(h.Value), 10, 64)
				}
			}
			n.pending.deliver(id, r.Value)
		})
	}
}

// call writes a request to topic and waits for its reply.
func (n *fnode) call(ctx context.Context, topic string, in []byte) ([]byte, error) {
	id, ch, forget := n.pending.add()
	defer forget()
	failed := make(chan error, 1)
	n.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: in, Headers: []kgo.RecordHeader{
		{Key: "id", Value: strconv.AppendUint(nil, id, 10)}, {Key: "reply-to", Value: []byte(n.replyTopic)},
	}}, func(_ *kgo.Record, err error) {
		if err != nil {
			failed <- err
		}
	})
	select {
	case out := <-ch:
		return out, nil
	case err := <-failed:
		return nil, err
	case <-ctx.Done():
		return nil, errors.Join(errors.New("franz-go"), ctx.Err())
	}
}

func (n *fnode) close() {
	n.stop()
	if n.cl != nil && n.cl != n.replies {
		n.cl.Close()
	}
	if n.replies != nil {
		n.replies.Close()
	}
	n.wg.Wait()
}

func (f *franz) add(ctx context.Context, i int) error { return f.call(ctx, i) }
func (f *franz) requestTopics() []string              { return f.topics }

func (f *franz) close() {
	for _, n := range f.nodes {
		n.close()
	}
}

// createTopics creates topics (name: partitions) with the brokers'
// replication factor and waits until every partition's leader serves it.
func createTopics(brokers []string, topics map[string]int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	check(err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for topic, n := range topics {
		_, err := adm.CreateTopic(ctx, int32(n), -1, nil, topic)
		check(err)
		for {
			offs, err := adm.ListEndOffsets(ctx, topic)
			served := 0
			offs.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					served++
				}
			})
			if err == nil && served == n {
				break
			}
			check(ctx.Err())
			time.Sleep(50 * time.Millisecond)
		}
	}
}
