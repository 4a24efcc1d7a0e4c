package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The Kafka clients of a transport, all franz-go's: every connection a
// node opens comes from clientOpts, with the same brokers, security,
// timeouts and logger. A transport has one client that writes requests
// and replies and asks the admin questions (writer.go, topics.go), one
// that reads its reply topic (replies.go), and one per service it serves,
// a member of the service's consumer group (serve.go).

// clientOpts returns the options every client of the transport shares,
// followed by extra.
func (cfg *Config) clientOpts(extra ...kgo.Opt) ([]kgo.Opt, error) {
	set := cfg.Settings
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("molgen-" + cfg.Node),
		kgo.DialTimeout(set.DialTimeout),
		kgo.ConnIdleTimeout(set.IdleTimeout),
		kgo.MetadataMaxAge(set.MetadataMaxAge),
		// Errors that make the clients look metadata up again (a leader
		// moved, a topic appeared) are answered this soon.
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.WithLogger(slogger{cfg.Logger}),
		kgo.DisableClientMetrics(),
		kgo.MaxDecompressBatchBytes(set.MaxDecompress),
		kgo.FetchMaxBytes(set.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(set.FetchMaxBytes),
		kgo.BrokerMaxReadBytes(max(2*set.FetchMaxBytes, 100<<20)),
		kgo.FetchMaxWait(set.FetchMaxWait),
		kgo.WithHooks(cfg.conns),
	}
	if cfg.Security.TLS != nil {
		opts = append(opts, kgo.Dialer(tlsDialer(cfg.Security.TLS, set.DialTimeout)))
	}
	if s := cfg.Security.SASL; s != nil {
		mech, err := s.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return append(opts, extra...), nil
}

// newClient makes a client with the shared options and extra.
func (cfg *Config) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := cfg.clientOpts(extra...)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(opts...)
}

// producerOpts are the options of the client that writes requests and
// replies: idempotent (a retried write never duplicates a record), acks
// from every in-sync replica, no linger, records in a batch bounded by the
// smaller of MaxMessageBytes and the topic's limit (limit, learned before
// a topic's first write: a batch over a topic's max.message.bytes would
// fail every record in it), and a buffer that the writer bounds itself
// (writer.admit) so that a write never blocks inside the client.
func producerOpts(set Settings, limit func(topic string) int32) []kgo.Opt {
	return []kgo.Opt{
		kgo.ProducerLinger(set.Linger),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProduceRequestTimeout(set.WriteTimeout),
		kgo.ProducerBatchMaxBytesFn(limit),
		kgo.MaxBufferedRecords(math.MaxInt32),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// Requests spread over a service's partitions, and so over its
		// instances, a batch at a time: the records that gather while a
		// produce request is in flight share a partition, the next batch
		// takes another (the default partitioner sticks to one partition
		// for 64 KiB: at a low rate one instance would take every
		// request). Partitions without a leader are left out.
		// A copy of a request (a //molgen:retry resend) goes to the
		// partition of the first, so that it reaches the instance that
		// remembers the call (dedup.go).
		kgo.RecordPartitioner(pinning{kgo.StickyPartitioner()}),
		// A record to a topic that does not exist fails after this many
		// metadata lookups (about a second): the writer creates request
		// topics itself, and a reply topic that is gone means its caller
		// has ended.
		kgo.UnknownTopicRetries(3),
	}
}

// connErrors remembers the last error of a connection to a broker (a
// dial, a TLS handshake, a SASL exchange, a read): the client retries a
// request whose connection fails until the request's time is up, and then
// reports only that; the cause is this.
type connErrors struct {
	mu   sync.Mutex
	last error
	at   time.Time
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (c *connErrors) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		c.note(err)
	}
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (c *connErrors) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		c.note(err)
	}
}

func (c *connErrors) note(err error) {
	c.mu.Lock()
	c.last, c.at = err, time.Now()
	c.mu.Unlock()
}

// since returns the last connection error seen after t, or nil.
func (c *connErrors) since(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.Before(t) {
		return nil
	}
	return c.last
}

// mechanism returns franz-go's implementation of s.
func (s *SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "PLAIN":
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("molgen: unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
}

// slogger passes franz-go's logs to the node's logger at DEBUG: the
// client logs every retry of a routine event (a leader that moved, a
// coordinator that changed, a connection a broker closed), which the
// transport reports itself, once and in words an operator can act on
// (watch.go).
type slogger struct{ log *slog.Logger }

func (l slogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelNone
}

func (l slogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l.log.Debug("kafka client: "+msg, append([]any{"client_says", strings.ToLower(level.String())}, keyvals...)...)
}

// pinning is a partitioner that sends a record whose write is pinned to a
// partition (write.pin) there, and every other one where the partitioner
// it wraps says.
type pinning struct{ kgo.Partitioner }

func (p pinning) ForTopic(topic string) kgo.TopicPartitioner {
	return &pinnedTopic{p.Partitioner.ForTopic(topic)}
}

type pinnedTopic struct{ kgo.TopicPartitioner }

// pinOf returns the partition r's write is pinned to, or -1.
func pinOf(r *kgo.Record) int32 {
	if w, ok := r.Context.(*write); ok && w.pinned {
		return w.pin
	}
	return -1
}

// RequiresConsistency is true for a pinned record: Partition then picks
// among all the topic's partitions, writable or not.
func (p *pinnedTopic) RequiresConsistency(r *kgo.Record) bool {
	return pinOf(r) >= 0 || p.TopicPartitioner.RequiresConsistency(r)
}

func (p *pinnedTopic) Partition(r *kgo.Record, n int) int {
	if pin := pinOf(r); pin >= 0 && int(pin) < n {
		return int(pin)
	}
	return p.TopicPartitioner.Partition(r, n)
}

func (p *pinnedTopic) OnNewBatch() {
	if nb, ok := p.TopicPartitioner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
