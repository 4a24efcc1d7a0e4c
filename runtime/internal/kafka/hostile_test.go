package kafka

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// TestCompressionBombIsSkipped: a compressed batch that decompresses to
// more than Settings.MaxDecompress (a few kilobytes of zstd that would
// take 8 MiB here) is skipped and counted; the requests after it are
// served. Without the skip the client would stop fetching the partition
// for good: one record would stop the service.
func TestCompressionBombIsSkipped(t *testing.T) {
	app := kafkatest.App("bomb")
	tr := testTransport(t, app, func(s *Settings) { s.MaxDecompress = 1 << 20 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var served atomic.Int64
	handle := func(ctx context.Context, req *transport.Request) transport.Reply {
		served.Add(1)
		return transport.Reply{Status: transport.StatusOK, Payload: req.Payload}
	}
	if err := tr.Serve(ctx, transport.Service{Name: "svc", Handle: handle, Slots: make(chan struct{}, 4)}); err != nil {
		t.Fatal(err)
	}
	topic := requestTopic(app, "svc")
	bomber := kafkatest.Client(t, kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerBatchMaxBytes(64<<20),
		kgo.BrokerMaxWriteBytes(100<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < 2; p++ {
		bomb := &kgo.Record{Topic: topic, Partition: p, Value: bytes.Repeat([]byte{0}, 8<<20)}
		if err := bomber.ProduceSync(ctx, bomb).FirstErr(); err != nil {
			t.Fatalf("writing the bomb: %v", err)
		}
	}
	for range 4 {
		req := testRequest("svc")
		req.Deadline = time.Now().Add(10 * time.Second)
		if _, err := tr.Call(ctx, req); err != nil {
			t.Fatalf("a call after the bombs: %v", err)
		}
	}
	if got := tr.Stats().BadMessages; got < 1 {
		t.Errorf("bad messages %d: the bombs were not counted", got)
	}
	if served.Load() < 4 {
		t.Errorf("served %d requests", served.Load())
	}
}

// TestTopicsTakeTheClusterReplicationFactor: the transport creates its
// topics with replication factor -1 (the cluster's
// default.replication.factor) unless told otherwise, and never asks a
// broker to create a topic through a metadata request.
func TestTopicsTakeTheClusterReplicationFactor(t *testing.T) {
	for _, c := range []struct {
		rf   int
		want int16
	}{{0, -1}, {3, 3}} {
		cl, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var rfs []int16
		var autoCreate atomic.Bool
		cl.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
			cl.KeepControl()
			for _, tp := range req.(*kmsg.CreateTopicsRequest).Topics {
				rfs = append(rfs, tp.ReplicationFactor)
			}
			return nil, nil, false
		})
		cl.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
			cl.KeepControl()
			if req.(*kmsg.MetadataRequest).AllowAutoTopicCreation {
				autoCreate.Store(true)
			}
			return nil, nil, false
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tr, err := New(ctx, Config{App: "rf", Node: "n", Instance: randomHex(4), Brokers: cl.ListenAddrs(), Partitions: 2, ReplicationFactor: c.rf,
			Logger: testLogger(t), ErrorReply: func(err error) []byte { return nil }, Settings: DefaultSettings()})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if err := tr.Send(ctx, testRequest("svc")); err != nil {
			t.Fatal(err)
		}
		tr.Drain()
		cancel()
		if len(rfs) != 2 || rfs[0] != c.want || rfs[1] != c.want {
			t.Errorf("ReplicationFactor %d: topics created with %v, want %d", c.rf, rfs, c.want)
		}
		if autoCreate.Load() {
			t.Error("a metadata request allowed auto-creation")
		}
	}
}
