package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// What the suite does to Kafka as any other client could (a plain
// franz-go client, never molgen's transport): write raw requests, read
// topics back, create topics.

func hdrs(kv ...string) []kgo.RecordHeader {
	var h []kgo.RecordHeader
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return h
}

func header(m *kgo.Record, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// plainClient returns a client of brokers that writes with acks=all, one
// record per partition in turn.
func plainClient(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchMaxBytes(64 << 20), kgo.BrokerMaxWriteBytes(100 << 20)}, opts...)...)
}

// writeRecords writes recs to topic, retrying while a young topic has no
// leader; a record the broker refuses as too large fails at once.
func writeRecords(ctx context.Context, cl *kgo.Client, topic string, recs ...*kgo.Record) error {
	for _, r := range recs {
		r.Topic = topic
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = cl.ProduceSync(ctx, recs...).FirstErr(); err == nil {
			return nil
		}
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// createTopics creates topics of one partition; configs (name, value
// pairs) apply to the ones named in withConfigs.
func createTopics(ctx context.Context, brokers []string, topics []string, withConfigs map[string][]string) error {
	cl, err := plainClient(brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, topic := range topics {
		cfg := map[string]*string{}
		kv := withConfigs[topic]
		for i := 0; i+1 < len(kv); i += 2 {
			cfg[kv[i]] = kadm.StringPtr(kv[i+1])
		}
		if _, err := adm.CreateTopic(ctx, 1, -1, cfg, topic); err != nil {
			return fmt.Errorf("creating %s: %w", topic, err)
		}
	}
	return nil
}

// readTopic reads every record of topic, all partitions, from the first
// offset to the end; a topic that does not exist has none.
func readTopic(brokers []string, topic string) ([]*kgo.Record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := plainClient(brokers)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	var oerr error
	ends.Each(func(e kadm.ListedOffset) {
		if errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
			return
		}
		s, _ := starts.Lookup(topic, e.Partition)
		switch {
		case e.Err != nil || s.Err != nil:
			oerr = errors.Join(e.Err, s.Err)
		case e.Offset > s.Offset:
			from[e.Partition] = kgo.NewOffset().At(s.Offset)
			left[e.Partition] = e.Offset
		}
	})
	if oerr != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, oerr)
	}
	if len(from) == 0 {
		return nil, nil
	}
	rd, err := plainClient(brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	byPart := map[int32][]*kgo.Record{}
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, ctx.Err())
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if !kerr.IsRetriable(err) {
				ferr = fmt.Errorf("reading %s/%d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			byPart[r.Partition] = append(byPart[r.Partition], r)
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	var out []*kgo.Record
	for p := int32(0); len(byPart) > 0; p++ {
		out = append(out, byPart[p]...)
		delete(byPart, p)
	}
	return out, nil
}
