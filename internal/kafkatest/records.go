package kafkatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// What tests do to the test broker as any other client could: read a
// topic's records, write raw records, create, delete and change topics.
// They use a plain franz-go client, never molgen's transport.

// Client returns a plain client of the test broker (extra options
// added), closed when the test ends.
func Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(Brokers(t)...), kgo.ProducerLinger(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client of the test broker.
func Admin(t testing.TB) *kadm.Client { return kadm.NewClient(Client(t)) }

// Headers makes record headers of key, value pairs.
func Headers(kv ...string) []kgo.RecordHeader {
	var h []kgo.RecordHeader
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return h
}

// Write writes recs to topic (acks=all), as another client would,
// retrying while a young topic has no leader.
func Write(t testing.TB, topic string, recs ...*kgo.Record) {
	t.Helper()
	cl := Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range recs {
		r.Topic = topic
	}
	for attempt := 0; ; attempt++ {
		err := cl.ProduceSync(ctx, recs...).FirstErr()
		if err == nil {
			return
		}
		if attempt > 50 || ctx.Err() != nil {
			t.Fatalf("writing to %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Records returns every record in topic, partition by partition, as Kafka
// holds it: tests use it to see which calls crossed Kafka and with which
// headers. A topic that does not exist has no records.
func Records(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	adm := Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !Exists(t, topic) {
		return nil
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("offsets of %s: %v", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("offsets of %s: %v", topic, err)
	}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{} // per partition, the end still to read up to
	var firstErr error
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, e.Partition)
		switch {
		case e.Err != nil || s.Err != nil:
			firstErr = errors.Join(e.Err, s.Err)
		case e.Offset > s.Offset:
			from[e.Partition] = kgo.NewOffset().At(s.Offset)
			left[e.Partition] = e.Offset
		}
	})
	if firstErr != nil {
		t.Fatalf("offsets of %s: %v", topic, firstErr)
	}
	if len(from) == 0 {
		return nil
	}
	cl := Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}), kgo.FetchMaxWait(100*time.Millisecond))
	byPart := map[int32][]*kgo.Record{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !kerr.IsRetriable(err) {
				t.Fatalf("reading %s/%d: %v", topic, p, err)
			}
		})
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
	return out
}

// Exists reports whether topic exists on the test broker.
func Exists(t testing.TB, topic string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// DescribeConfigs asks a broker and never creates the topic.
	rcs, err := Admin(t).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describing topic %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatalf("describing topic %s: %v", topic, err)
	}
	return rc.Err == nil
}

// Header returns the value of m's header key, and whether it is there.
func Header(m *kgo.Record, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// CreateTopic creates topic with partitions and configs (name, value
// pairs) on the test broker, with the broker's replication factor.
func CreateTopic(t testing.TB, topic string, partitions int, configs ...string) {
	t.Helper()
	cfg := map[string]*string{}
	for i := 0; i+1 < len(configs); i += 2 {
		cfg[configs[i]] = kadm.StringPtr(configs[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Admin(t).CreateTopic(ctx, int32(partitions), -1, cfg, topic); err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
	// Wait until every partition's leader serves it.
	for {
		offs, err := Admin(t).ListEndOffsets(ctx, topic)
		n := 0
		offs.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				n++
			}
		})
		if err == nil && n == partitions {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("waiting for the leaders of %s: %v", topic, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DeleteTopic deletes topic and waits until the broker no longer has it.
func DeleteTopic(t testing.TB, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Admin(t).DeleteTopic(ctx, topic); err != nil {
		t.Fatalf("deleting %s: %v", topic, err)
	}
	for Exists(t, topic) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
}

// SetTopicConfig sets one config of topic.
func SetTopicConfig(t testing.TB, topic, name, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := Admin(t).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}}, topic)
	if err == nil {
		_, err = rs.On(topic, nil)
	}
	if err == nil {
		for _, r := range rs {
			err = errors.Join(err, r.Err)
		}
	}
	if err != nil {
		t.Fatalf("setting %s=%s on %s: %v", name, value, topic, err)
	}
}
