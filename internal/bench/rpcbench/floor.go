package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/segmentio/kafka-go"
)

// floor is request/reply with kafka-go and nothing else, as well as
// kafka-go allows: one shared Writer per side (RequireAll, 1ms batch),
// replies written concurrently, a consumer-group Reader on the request
// topic with periodic commits, and a direct-partition Reader on the reply
// topic started at a resolved offset.
type floor struct {
	reqTopic, replyTopic string
	tr                   *kafka.Transport
	clientW, serverW     *kafka.Writer
	requests, replies    *kafka.Reader
	stop                 context.CancelFunc
	wg                   sync.WaitGroup

	pending pendingCalls
}

func newFloor(brokers []string, partitions int) *floor {
	app := kafkatest.App("floor")
	f := &floor{reqTopic: app + ".requests", replyTopic: app + ".replies"}
	f.tr = &kafka.Transport{MetadataTTL: time.Second}
	admin := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: f.tr}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createTopics(brokers, map[string]int{f.reqTopic: partitions, f.replyTopic: 1})
	writer := func() *kafka.Writer {
		return &kafka.Writer{Addr: kafka.TCP(brokers...), Transport: f.tr, RequiredAcks: kafka.RequireAll,
			BatchTimeout: time.Millisecond, BatchSize: 100, Balancer: &kafka.RoundRobin{}}
	}
	f.clientW, f.serverW = writer(), writer()
	// A new topic's leader may not be in the metadata cache yet: retry.
	var end kafka.PartitionOffsets
	for {
		res, err := admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{f.replyTopic: {kafka.LastOffsetOf(0)}}})
		check(err)
		end = res.Topics[f.replyTopic][0]
		if end.Error == nil && end.LastOffset >= 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.replies = kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: f.replyTopic, MinBytes: 1, MaxBytes: 16 << 20,
		MaxWait: 500 * time.Millisecond, QueueCapacity: 1024, ReadLagInterval: -1})
	check(f.replies.SetOffset(end.LastOffset))
	f.requests = kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: f.reqTopic, GroupID: app, MinBytes: 1, MaxBytes: 16 << 20,
		MaxWait: 500 * time.Millisecond, HeartbeatInterval: time.Second, SessionTimeout: 6 * time.Second, StartOffset: kafka.FirstOffset,
		ReadLagInterval: -1, JoinGroupBackoff: 500 * time.Millisecond})
	rctx, stop := context.WithCancel(context.Background())
	f.stop = stop
	f.wg.Add(3)
	go f.serve(rctx)
	go f.receive(rctx)
	go f.commit(rctx)
	return f
}

var lastDone sync.Map // partition -> offset, for the floor's commits

// serve answers each request in its own goroutine: replies are written
// concurrently and batched by the shared Writer.
func (f *floor) serve(ctx context.Context) {
	defer f.wg.Done()
	for {
		m, err := f.requests.FetchMessage(ctx)
		if err != nil {
			return
		}
		go func() {
			a, n := binary.Varint(m.Value)
			b, _ := binary.Varint(m.Value[n:])
			out := binary.AppendVarint(nil, a+b)
			var id, replyTo []byte
			for _, h := range m.Headers {
				switch h.Key {
				case "id":
					id = h.Value
				case "reply-to":
					replyTo = h.Value
				}
			}
			f.serverW.WriteMessages(context.Background(), kafka.Message{Topic: string(replyTo), Value: out, Headers: []kafka.Header{{Key: "id", Value: id}}})
			lastDone.Store(m.Partition, m.Offset)
		}()
	}
}

func (f *floor) commit(ctx context.Context) {
	defer f.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			var msgs []kafka.Message
			lastDone.Range(func(k, v any) bool {
				msgs = append(msgs, kafka.Message{Topic: f.reqTopic, Partition: k.(int), Offset: v.(int64)})
				return true
			})
			if len(msgs) > 0 {
				f.requests.CommitMessages(ctx, msgs...)
			}
		}
	}
}

func (f *floor) receive(ctx context.Context) {
	defer f.wg.Done()
	for {
		m, err := f.replies.FetchMessage(ctx)
		if err != nil {
			return
		}
		var id uint64
		for _, h := range m.Headers {
			if h.Key == "id" {
				id, _ = strconv.ParseUint(string(h.Value), 10, 64)
			}
		}
		f.pending.deliver(id, m.Value)
	}
}

func (f *floor) add(ctx context.Context, i int) error {
	v, err := f.sum(ctx, i, 1)
	if err == nil && v != i+1 {
		err = fmt.Errorf("floor: %d+1 = %d", i, v)
	}
	return err
}

func (f *floor) requestTopics() []string { return []string{f.reqTopic} }

func (f *floor) sum(ctx context.Context, a, b int) (int, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	id, ch, forget := f.pending.add()
	defer forget()
	v := binary.AppendVarint(binary.AppendVarint(nil, int64(a)), int64(b))
	err := f.clientW.WriteMessages(ctx, kafka.Message{Topic: f.reqTopic, Value: v, Headers: []kafka.Header{
		{Key: "id", Value: []byte(strconv.FormatUint(id, 10))}, {Key: "reply-to", Value: []byte(f.replyTopic)},
	}})
	if err != nil {
		return 0, err
	}
	select {
	case out := <-ch:
		r, n := binary.Varint(out)
		if n <= 0 {
			return 0, errors.New("bad reply")
		}
		return int(r), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("floor: %w", ctx.Err())
	}
}

func (f *floor) close() {
	f.stop()
	f.wg.Wait()
	f.requests.Close()
	f.replies.Close()
	f.clientW.Close()
	f.serverW.Close()
	f.tr.CloseIdleConnections()
}

// createTopics creates topics (name -> partitions) and waits until every
// partition has a leader.
func createTopics(brokers []string, topics map[string]int) {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	admin := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cfgs []kafka.TopicConfig
	for t, n := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: n, ReplicationFactor: 1})
	}
	res, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	check(err)
	for t, e := range res.Errors {
		if e != nil {
			check(fmt.Errorf("creating %s: %w", t, e))
		}
	}
	for topic := range topics {
		for {
			md, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
			ok := err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0
			if ok {
				for _, p := range md.Topics[0].Partitions {
					ok = ok && p.Leader.Host != ""
				}
			}
			if ok {
				break
			}
			check(ctx.Err())
			time.Sleep(50 * time.Millisecond)
		}
	}
}
