package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/internal/testsvc"
)

// The comparator of the cluster scenarios: request/reply written straight
// on franz-go, as well as it allows, with molgen's layout — a request
// topic with the same partitions (on the same brokers, the same leaders)
// served by a consumer group of two members, and a reply topic (one
// partition, on the brokers of molgen's caller's) read by its one caller.
// It makes the calls of the load (Concat and Where) with the same
// arguments and deadlines as molgen's, and its records are read back and
// counted the same way.
//
// As well as franz-go allows: linger 0; acks from every in-sync replica
// with franz-go's idempotent producer (its default), whose retries never
// write a record twice; a record is produced with a context that never
// ends (the client would fail every record buffered behind one whose
// context ended); the cooperative-sticky group with molgen's session,
// heartbeat and commit interval; each request runs on a goroutine of its
// own, and an offset is committed only once every request before it has
// been answered (AutoCommitMarks, marked in order), and synchronously
// before a partition is handed over; requests whose deadline has passed
// are not run; and the clients look metadata up again as soon as molgen's
// do (250 ms after an error).
//
// It is not molgen's code: it shares neither its transport nor rpcbench's
// comparator (which commits what it has polled, not what it has
// answered, and which issue 20's rpcbench work tunes for speed).

// Header keys of the comparator's records.
const (
	fhID       = "id"       // the call's id, unique per caller
	fhMethod   = "method"   // Concat or Where
	fhReplyTo  = "reply-to" // the caller's reply topic
	fhDeadline = "deadline" // Unix nanoseconds
	fhStatus   = "status"   // "ok" or "error"
)

// franzRPC is the comparator of one scenario: its caller and servers.
type franzRPC struct {
	app                         string // the scenario's app (its topics' middle name)
	reqTopic, replyTopic, group string
	brokers                     []string
	session                     time.Duration
	log                         io.Writer

	rec  *recorder
	calc testsvc.Calc
	load *loadGen

	prod, replies *kgo.Client // the caller's: writes requests, reads replies
	callerID      string
	nextID        atomic.Uint64
	waitMu        sync.Mutex
	waiting       map[string]chan franzReply

	servers []*franzServer

	runMu sync.Mutex
	runs  []logRun // every request a server started to run

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

type franzReply struct {
	value []byte
	err   string
}

// franzNames are the names the comparator's servers answer Where with.
var franzNames = []string{"fa", "fb"}

func newFranzRPC(app string, brokers []string, session time.Duration, logPath, prefix string) (*franzRPC, error) {
	f := &franzRPC{
		app: app, brokers: brokers, session: session,
		reqTopic: "franz." + app + ".req.calc", replyTopic: "franz." + app + ".reply.load", group: "franz." + app + ".calc",
		rec: newRecorder(prefix), waiting: map[string]chan franzReply{}, callerID: app,
		log: io.Discard,
	}
	if logPath != "" {
		lf, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		f.log = lf
	}
	f.ctx, f.stop = context.WithCancel(context.Background())
	f.calc = franzCalc{f: f}
	f.rec.allow(franzNames...)
	return f, nil
}

// opts are every client's options: molgen's connection settings
// (runtime/internal/kafka/clients.go), no linger, acks=all, idempotent.
func (f *franzRPC) opts(name string, extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(f.brokers...),
		kgo.ClientID("franz-" + name),
		kgo.DialTimeout(5 * time.Second),
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.FetchMaxWait(time.Second),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProduceRequestTimeout(10 * time.Second),
		kgo.WithLogger(kgo.BasicLogger(f.log, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") + name + " " })),
	}, extra...)
}

// start starts the servers and the caller; the topics exist.
func (f *franzRPC) start() error {
	for _, name := range franzNames {
		s, err := f.startServer(name)
		if err != nil {
			return err
		}
		f.servers = append(f.servers, s)
	}
	var err error
	if f.prod, err = kgo.NewClient(f.opts("caller")...); err != nil {
		return err
	}
	if f.replies, err = kgo.NewClient(f.opts("replies",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.replyTopic: {0: kgo.NewOffset().AtEnd()}}))...); err != nil {
		return err
	}
	f.wg.Add(1)
	go f.readReplies()
	return nil
}

// waitAssigned waits until every server has partitions of the request
// topic, within limit.
func (f *franzRPC) waitAssigned(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var without []string
		for _, s := range f.servers {
			s.mu.Lock()
			if len(s.parts) == 0 {
				without = append(without, s.name)
			}
			s.mu.Unlock()
		}
		if len(without) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("within %v, servers %v got no partitions of %s", limit, without, f.reqTopic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readReplies hands each reply to the call waiting for it.
func (f *franzRPC) readReplies() {
	defer f.wg.Done()
	for {
		fs := f.replies.PollFetches(f.ctx)
		if fs.IsClientClosed() || f.ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			rep := franzReply{value: r.Value}
			if header(r, fhStatus) != "ok" {
				rep.err = string(r.Value)
			}
			f.waitMu.Lock()
			ch := f.waiting[header(r, fhID)]
			f.waitMu.Unlock()
			if ch != nil {
				select {
				case ch <- rep:
				default:
				}
			}
		})
	}
}

// call writes a request of method and waits for its reply until ctx ends.
func (f *franzRPC) call(ctx context.Context, method string, value []byte) ([]byte, error) {
	id := f.callerID + "." + strconv.FormatUint(f.nextID.Add(1), 10)
	ch := make(chan franzReply, 1)
	f.waitMu.Lock()
	f.waiting[id] = ch
	f.waitMu.Unlock()
	defer func() {
		f.waitMu.Lock()
		delete(f.waiting, id)
		f.waitMu.Unlock()
	}()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	failed := make(chan error, 1)
	f.prod.Produce(context.Background(), &kgo.Record{Topic: f.reqTopic, Value: value, Headers: hdrs(
		fhID, id, fhMethod, method, fhReplyTo, f.replyTopic, fhDeadline, strconv.FormatInt(deadline.UnixNano(), 10),
	)}, func(_ *kgo.Record, err error) {
		if err != nil {
			failed <- err
		}
	})
	select {
	case r := <-ch:
		if r.err != "" {
			return nil, errors.New("franz-go: " + r.err)
		}
		return r.value, nil
	case err := <-failed:
		return nil, fmt.Errorf("franz-go: writing the request: %w", err)
	case <-ctx.Done():
		return nil, fmt.Errorf("franz-go: %s: %w", method, ctx.Err())
	}
}

// noteRun records that a server started to run the request at p/o.
func (f *franzRPC) noteRun(p int32, o int64, method string) {
	f.runMu.Lock()
	f.runs = append(f.runs, logRun{key: reqKey{partition: int(p), offset: o}, method: method})
	f.runMu.Unlock()
}

// runsSoFar returns the runs the servers started.
func (f *franzRPC) runsSoFar() []logRun {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	return append([]logRun(nil), f.runs...)
}

// close stops the caller and the servers (each commits what it answered
// and leaves the group), bounded.
func (f *franzRPC) close() {
	done := make(chan struct{})
	go func() {
		for _, s := range f.servers {
			s.close()
		}
		f.stop()
		if f.prod != nil {
			f.prod.Close()
		}
		if f.replies != nil {
			f.replies.Close()
		}
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(45 * time.Second):
	}
	if c, ok := f.log.(io.Closer); ok {
		c.Close()
	}
}

// franzCalc is the comparator as a testsvc.Calc, so that the suite's load
// (recorder.do) calls it as it calls molgen's client. Only Concat and
// Where are implemented; the load calls nothing else.
type franzCalc struct {
	testsvc.Calc
	f *franzRPC
}

// Concat's request is encoded as molgen encodes it (three strings, each
// after its length as a uvarint), so that the read-back names its call
// the same way.
func (c franzCalc) Concat(ctx context.Context, a, b, x string) (string, error) {
	var v []byte
	for _, s := range []string{a, b, x} {
		v = binary.AppendUvarint(v, uint64(len(s)))
		v = append(v, s...)
	}
	out, err := c.f.call(ctx, "Concat", v)
	return string(out), err
}

// Where's request is the duration as a varint, as molgen's.
func (c franzCalc) Where(ctx context.Context, d time.Duration) (string, error) {
	out, err := c.f.call(ctx, "Where", binary.AppendVarint(nil, int64(d)))
	return string(out), err
}

// franzServer is one member of the comparator's group.
type franzServer struct {
	f    *franzRPC
	name string
	cl   *kgo.Client
	done chan struct{}

	mu    sync.Mutex
	parts map[int32]*inOrder // partitions assigned: requests taken, in offset order
	idle  *sync.Cond         // signalled when a request finishes
}

func (f *franzRPC) startServer(name string) (*franzServer, error) {
	s := &franzServer{f: f, name: name, done: make(chan struct{}), parts: map[int32]*inOrder{}}
	s.idle = sync.NewCond(&s.mu)
	cl, err := kgo.NewClient(f.opts(name,
		kgo.ConsumerGroup(f.group),
		kgo.ConsumeTopics(f.reqTopic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(f.session),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.RebalanceTimeout(10*time.Second+f.session),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(100*time.Millisecond),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	)...)
	if err != nil {
		return nil, err
	}
	s.cl = cl
	go s.serve()
	return s, nil
}

func (s *franzServer) serve() {
	defer close(s.done)
	for {
		fs := s.cl.PollRecords(s.f.ctx, 256)
		if fs.IsClientClosed() || s.f.ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(s.f.log, "%s %s fetching %s/%d: %v\n", time.Now().Format("15:04:05.000"), s.name, t, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			s.mu.Lock()
			q := s.parts[r.Partition]
			if q == nil {
				q = &inOrder{}
				s.parts[r.Partition] = q
			}
			q.take(r.Offset)
			s.mu.Unlock()
			go s.handle(r)
		})
	}
}

// handle runs one request and writes its reply; the request counts as
// finished (its offset may be committed) once the reply is written, or
// when it is not run because its deadline has passed.
func (s *franzServer) handle(r *kgo.Record) {
	method := header(r, fhMethod)
	ns, _ := strconv.ParseInt(header(r, fhDeadline), 10, 64)
	deadline := time.Unix(0, ns)
	if !time.Now().Before(deadline) {
		s.finish(r)
		return
	}
	s.f.noteRun(r.Partition, r.Offset, method)
	ctx, cancel := context.WithDeadline(s.f.ctx, deadline)
	out, err := s.run(ctx, method, r.Value)
	cancel()
	reply := &kgo.Record{Topic: header(r, fhReplyTo), Value: out, Headers: hdrs(fhID, header(r, fhID), fhStatus, "ok")}
	if err != nil {
		reply.Value, reply.Headers[1].Value = []byte(err.Error()), []byte("error")
	}
	s.cl.Produce(context.Background(), reply, func(_ *kgo.Record, err error) {
		if err != nil {
			fmt.Fprintf(s.f.log, "%s %s writing a reply: %v\n", time.Now().Format("15:04:05.000"), s.name, err)
		}
		s.finish(r)
	})
}

// run is the service: Concat joins its three arguments, Where waits and
// names this server.
func (s *franzServer) run(ctx context.Context, method string, v []byte) ([]byte, error) {
	switch method {
	case "Concat":
		var parts []string
		for range 3 {
			n, k := binary.Uvarint(v)
			if k <= 0 || uint64(len(v)-k) < n {
				return nil, errors.New("malformed Concat request")
			}
			parts = append(parts, string(v[k:k+int(n)]))
			v = v[k+int(n):]
		}
		return []byte(parts[0] + "|" + parts[1] + "|" + parts[2]), nil
	case "Where":
		d, k := binary.Varint(v)
		if k <= 0 {
			return nil, errors.New("malformed Where request")
		}
		select {
		case <-time.After(time.Duration(d)):
			return []byte(s.name), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("unknown method %q", method)
}

// finish marks r finished, and marks for commit the offset up to which
// every request of its partition is.
func (s *franzServer) finish(r *kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.parts[r.Partition]
	if q == nil {
		return // the partition was lost meanwhile
	}
	if next, moved := q.finish(r.Offset); moved {
		s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{r.Topic: {r.Partition: {Epoch: r.LeaderEpoch, Offset: next}}})
	}
	s.idle.Broadcast()
}

func (s *franzServer) assigned(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps[s.f.reqTopic] {
		if s.parts[p] == nil {
			s.parts[p] = &inOrder{}
		}
	}
}

// revoked lets the requests of the partitions given up finish (for at
// most 10 s, as molgen's RebalanceGrace), commits them, and forgets the
// partitions.
func (s *franzServer) revoked(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
	limit := time.Now().Add(10 * time.Second)
	wake := time.AfterFunc(10*time.Second, func() { s.mu.Lock(); s.idle.Broadcast(); s.mu.Unlock() })
	defer wake.Stop()
	s.mu.Lock()
	for _, p := range ps[s.f.reqTopic] {
		for q := s.parts[p]; q != nil && q.busy() && time.Now().Before(limit); {
			s.idle.Wait()
		}
	}
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		fmt.Fprintf(s.f.log, "%s %s committing on revoke: %v\n", time.Now().Format("15:04:05.000"), s.name, err)
	}
	s.mu.Lock()
	for _, p := range ps[s.f.reqTopic] {
		delete(s.parts, p)
	}
	s.mu.Unlock()
}

// lost forgets partitions taken away (no commit can succeed).
func (s *franzServer) lost(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps[s.f.reqTopic] {
		delete(s.parts, p)
	}
}

// close commits what was answered and leaves the group.
func (s *franzServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Let the requests running finish, as a drain does.
	s.mu.Lock()
	limit := time.Now().Add(10 * time.Second)
	wake := time.AfterFunc(10*time.Second, func() { s.mu.Lock(); s.idle.Broadcast(); s.mu.Unlock() })
	for {
		busy := false
		for _, q := range s.parts {
			busy = busy || q.busy()
		}
		if !busy || !time.Now().Before(limit) {
			break
		}
		s.idle.Wait()
	}
	s.mu.Unlock()
	wake.Stop()
	s.cl.CommitMarkedOffsets(ctx)
	s.cl.LeaveGroupContext(ctx)
	s.cl.Close()
	<-s.done
}

// inOrder is the requests taken from one partition: an offset may be
// committed once every request before it has finished, whatever order
// they finish in.
type inOrder struct {
	pending  []int64 // taken and not finished, in offset order
	finished map[int64]bool
	next     int64 // every request before it has finished
}

// take notes a request taken (offsets come in increasing order).
func (q *inOrder) take(o int64) { q.pending = append(q.pending, o) }

// finish notes that request o finished and returns the offset to commit
// (the first not finished, or the one after the last) and whether it moved.
func (q *inOrder) finish(o int64) (int64, bool) {
	if q.finished == nil {
		q.finished = map[int64]bool{}
	}
	q.finished[o] = true
	moved := false
	for len(q.pending) > 0 && q.finished[q.pending[0]] {
		delete(q.finished, q.pending[0])
		q.next = q.pending[0] + 1
		q.pending = q.pending[1:]
		moved = true
	}
	return q.next, moved
}

// busy reports whether a request taken has not finished.
func (q *inOrder) busy() bool { return len(q.pending) > 0 }
