// Command prodprobe measures franz-go's produce path alone, the part of a
// remote call that sets molgen's throughput at 16 calls in flight: -n
// goroutines each write one record and wait for its acknowledgement, in a
// loop, against a real broker, for a few producer configurations side by
// side, each round in turn. It reports records per second, the median
// write, how many produce requests carried them and the broker's time per
// request (kgo's BrokerE2E hook).
//
//	go run ./internal/bench/prodprobe -brokers 127.0.0.1:9092 -n 16
//
// It shows a limit of franz-go's API (docs/PERFORMANCE.md): an idempotent
// producer keeps up to five produce requests in flight per broker, and no
// option lowers that (kgo.MaxProduceRequestsInflightPerBroker applies only
// without idempotence), so concurrent writes go out in small requests that
// cost the broker more per record than the few larger requests of a
// producer with one request in flight.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// counts adds up the produce requests a client sends and their records.
type counts struct {
	requests, records, brokerTime atomic.Int64
}

func (c *counts) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	c.records.Add(int64(m.NumRecords))
}

func (c *counts) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key == 0 { // Produce
		c.requests.Add(1)
		c.brokerTime.Add(int64(e.ReadWait + e.TimeToRead))
	}
}

var configs = []struct {
	name string
	opts []kgo.Opt
}{
	{"idempotent (franz-go's default, molgen's)", nil},
	{"not idempotent, 5 requests in flight", []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5)}},
	{"not idempotent, 1 request in flight", []kgo.Opt{kgo.DisableIdempotentWrite()}},
	{"idempotent, linger 300µs", []kgo.Opt{kgo.ProducerLinger(300 * time.Microsecond)}},
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "a real Kafka broker")
	writers := flag.Int("n", 16, "writes in flight")
	duration := flag.Duration("d", 3*time.Second, "length of each run")
	partitions := flag.Int("partitions", 8, "partitions of the topic")
	rounds := flag.Int("rounds", 2, "rounds of every configuration")
	flag.Parse()
	if err := run(*brokers, *writers, *duration, *partitions, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "prodprobe:", err)
		os.Exit(1)
	}
}

func run(brokers string, writers int, duration time.Duration, partitions, rounds int) error {
	ctx := context.Background()
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	topic := fmt.Sprintf("prodprobe-%d", time.Now().UnixNano())
	if _, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, topic); err != nil {
		return err
	}
	defer adm.DeleteTopics(ctx, topic)
	fmt.Printf("prodprobe: %s, %d writes in flight, %s per run, %d partitions\n\n", brokers, writers, duration, partitions)
	fmt.Println("| producer | records/s | median write | records per request | broker time per request |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for range rounds {
		for _, c := range configs {
			if err := measure(ctx, brokers, topic, c.name, c.opts, writers, duration); err != nil {
				return err
			}
		}
	}
	return nil
}

func measure(ctx context.Context, brokers, topic, name string, extra []kgo.Opt, writers int, duration time.Duration) error {
	n := &counts{}
	opts := append([]kgo.Opt{kgo.SeedBrokers(brokers), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.WithHooks(n)}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	// The first write waits for metadata and a producer id.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("warm up")}).FirstErr(); err != nil {
		return err
	}
	n.requests.Store(0)
	n.records.Store(0)
	n.brokerTime.Store(0)
	var (
		mu    sync.Mutex
		took  []time.Duration
		first error
		wg    sync.WaitGroup
	)
	end := time.Now().Add(duration)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			value := make([]byte, 100)
			var err error
			for err == nil && time.Now().Before(end) {
				start := time.Now()
				err = cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr()
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			took = append(took, mine...)
			if first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	slices.Sort(took)
	reqs := max(n.requests.Load(), 1)
	fmt.Printf("| %s | %.0f | %d µs | %.1f | %d µs |\n", name, float64(len(took))/duration.Seconds(),
		took[len(took)/2].Microseconds(), float64(n.records.Load())/float64(reqs), time.Duration(n.brokerTime.Load()/reqs).Microseconds())
	return nil
}
