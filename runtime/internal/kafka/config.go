package kafka

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/molgen/molgen/runtime/internal/envelope"
)

// Config is what a node tells its transport: who it is, where Kafka is,
// and how to answer requests it cannot read.
type Config struct {
	App      string   // names topics and consumer groups
	Node     string   // this node's name
	Instance string   // this running copy's id; names its reply topic
	Brokers  []string // bootstrap addresses
	// Ephemeral means the instance id was generated: the reply topic is
	// deleted when the transport drains.
	Ephemeral bool
	// Partitions and ReplicationFactor of the topics the transport creates.
	Partitions, ReplicationFactor int
	Logger                        *slog.Logger
	// ErrorReply encodes an error as the value of an error reply (the
	// runtime owns the error format and the identities it carries).
	ErrorReply func(error) []byte
	// WaitForInstances makes a call to a service without a running
	// instance wait for one until its deadline, rather than fail with
	// ErrNoInstance (placement kafka.wait_for_instances).
	WaitForInstances bool
	Settings         Settings
	// Security protects and authenticates every connection to Kafka.
	Security Security
	// Keys, when set, sign every request and reply the transport writes,
	// and make it drop every one it reads that is not signed by them.
	Keys *envelope.Keys
}

// Security is how the Kafka clients protect and authenticate their
// connections. The zero value is plaintext without authentication.
type Security struct {
	// TLS, when set, encrypts every connection.
	TLS *tls.Config
	// SASL, when set, authenticates every connection.
	SASL *SASL
}

// SASL is a SASL mechanism and its credentials.
type SASL struct {
	Mechanism          string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username, Password string
}

// mechanism returns kafka-go's implementation of s.
func (s *SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("molgen: unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
}

// String describes the security for messages, without secrets.
func (s Security) String() string {
	out := "plaintext"
	if s.TLS != nil {
		out = "TLS"
		if len(s.TLS.Certificates) > 0 {
			out += " with a client certificate"
		}
	}
	if s.SASL != nil {
		out += fmt.Sprintf(", SASL %s as %q", s.SASL.Mechanism, s.SASL.Username)
	}
	return out
}

// clients builds the two kinds of kafka-go clients a transport uses, both
// with the TLS config and SASL mechanism of cfg: every Kafka connection a
// node opens (producer, admin and metadata requests through the
// Transport; consumer groups and partition readers through the Dialer)
// comes from here.
func (cfg *Config) clients() (*kafkago.Transport, *kafkago.Dialer, error) {
	set := cfg.Settings
	var mech sasl.Mechanism
	if cfg.Security.SASL != nil {
		m, err := cfg.Security.SASL.mechanism()
		if err != nil {
			return nil, nil, err
		}
		mech = m
	}
	id := "molgen-" + cfg.Node
	tr := &kafkago.Transport{
		DialTimeout: set.DialTimeout,
		IdleTimeout: set.IdleTimeout,
		MetadataTTL: set.MetadataTTL,
		ClientID:    id,
		TLS:         cfg.Security.TLS,
		SASL:        mech,
	}
	d := &kafkago.Dialer{
		Timeout:       set.DialTimeout,
		DualStack:     true,
		ClientID:      id,
		TLS:           cfg.Security.TLS,
		SASLMechanism: mech,
	}
	return tr, d, nil
}

// Settings are the knobs of the Kafka clients, in one place. kafka-go's
// defaults suit pipelines, not RPC: each value says why it is what it is.
// DefaultSettings gives molgen's values; the node overrides the ones its
// Options expose.
type Settings struct {
	// ConnectTimeout bounds how long New waits for a broker that is
	// starting before it fails with an error naming the brokers.
	ConnectTimeout time.Duration
	// MetadataProbe bounds one metadata request while waiting for Kafka.
	MetadataProbe time.Duration
	// ConnectRetry is the pause between two probes of a broker that does
	// not answer yet.
	ConnectRetry time.Duration

	// DialTimeout bounds opening one connection.
	DialTimeout time.Duration
	// IdleTimeout closes connections unused this long.
	IdleTimeout time.Duration
	// MetadataTTL is how often cached metadata is refreshed: short, so
	// that topics created by other nodes become visible quickly.
	MetadataTTL time.Duration
	// AdminTimeout bounds one admin request (create topics, offsets).
	AdminTimeout time.Duration

	// Linger is how long a producer with nothing in flight waits before it
	// sends. Zero: a request or reply goes out at once, and records that
	// come while produce requests are in flight gather for the next one
	// (natural batching). kafka-go's Writer waits its BatchTimeout (1s by
	// default) before every batch; tests set Linger to make records share
	// a batch.
	Linger time.Duration
	// BatchSize is the most records of one produce request.
	BatchSize int
	// ProduceInflight is how many produce requests may be in flight to one
	// broker at a time, pipelined on one connection; records that come
	// while all are busy share the next one. The broker works through a
	// connection's requests one at a time anyway, and every request costs
	// it work: 1 (the default) makes the fewest, largest requests. On this
	// project's 2-core machine, 1 gave 1.2–1.4× the calls/s of 4 at 256
	// calls in flight and 1.9× at 16, with a third less broker CPU per
	// call (docs/PERFORMANCE.md).
	ProduceInflight int
	// ProduceBuffer bounds the bytes of records queued and in flight; a
	// write beyond it waits for room.
	ProduceBuffer int64
	// MaxMessageBytes bounds a produce request (and so a request or reply).
	MaxMessageBytes int64
	// WriteTimeout bounds one produce request: its I/O and the broker's
	// wait for the acks of every in-sync replica. molgen retries retriable
	// failures itself, within the call's deadline.
	WriteTimeout time.Duration
	// RetryBackoffMax caps the pause between molgen's own write retries.
	RetryBackoffMax time.Duration

	// FetchMaxWait is how long the broker holds an empty fetch (a reader
	// breaks a fetch in flight off when it closes or moves).
	FetchMaxWait time.Duration
	// FetchMaxBytes bounds one fetch.
	FetchMaxBytes int
	// ReadBatchTimeout bounds reading one fetch response, beyond
	// FetchMaxWait.
	ReadBatchTimeout time.Duration
	// ReadBackoffMin and ReadBackoffMax pace fetch retries after errors.
	ReadBackoffMin, ReadBackoffMax time.Duration

	// SessionTimeout is the consumer-group session: how long a dead
	// instance keeps its partitions before others take its requests.
	SessionTimeout time.Duration
	// RebalanceExtra is added to SessionTimeout for the rebalance timeout.
	RebalanceExtra time.Duration
	// JoinGroupBackoff paces attempts to rejoin the group.
	JoinGroupBackoff time.Duration
	// PartitionWatch is how often a group member checks its topic's
	// partition count (a metadata request): a change ends the generation,
	// so that partitions that appear are served.
	PartitionWatch time.Duration
	// CommitInterval is how often offsets of finished requests are
	// committed. molgen commits itself, only up to the first request of a
	// partition still running; kafka-go's own commits are off.
	CommitInterval time.Duration
	// CommitTimeout bounds one commit.
	CommitTimeout time.Duration
	// CloseTimeout bounds leaving the group at the end of a drain, since
	// kafka-go can wait on a broker that is gone.
	CloseTimeout time.Duration

	// RequestRetention and ReplyRetention are the retention of the topics
	// molgen creates: requests older than a day are past any deadline, and
	// replies are read at once.
	RequestRetention, ReplyRetention time.Duration
	// ReplyGrace is how long after a request's deadline its reply may
	// still be written: a reply that is ready still goes out.
	ReplyGrace time.Duration
	// BadReplyTimeout bounds writing the error reply to a malformed request.
	BadReplyTimeout time.Duration

	// MaxDeadline bounds how far in the future a request's deadline may
	// be: a later one (a hostile or broken caller, or a caller with no
	// limit) is clamped to it, so that no request holds a slot longer.
	MaxDeadline time.Duration
	// RebalanceGrace is how long a member whose partitions are being
	// reassigned (another instance joins or leaves) lets the requests it
	// runs finish, and commits them, before it rejoins the group: requests
	// that finish within it are never run again elsewhere.
	RebalanceGrace time.Duration
	// DrainTimeout bounds a drain: requests still running after it are
	// left uncommitted (another instance runs them) and the drain ends.
	DrainTimeout time.Duration

	// InstanceCheck is how long a call waits for its reply before it asks
	// whether its service has a running instance (whether the service's
	// consumer group has members). A call fails with ErrNoInstance when
	// lookups InstanceCheck/2 apart found no member in a row; the lookups
	// of a service are shared by its calls and cached for InstanceCheck/2,
	// so a call answered sooner costs none. Zero turns the check off.
	InstanceCheck time.Duration
}

// DefaultSettings returns molgen's settings for RPC over Kafka.
func DefaultSettings() Settings {
	return Settings{
		ConnectTimeout: 10 * time.Second,
		MetadataProbe:  5 * time.Second,
		ConnectRetry:   250 * time.Millisecond,

		DialTimeout:  5 * time.Second,
		IdleTimeout:  30 * time.Second,
		MetadataTTL:  time.Second,
		AdminTimeout: 10 * time.Second,

		Linger:          0,
		BatchSize:       500,
		ProduceInflight: 1,
		ProduceBuffer:   64 << 20,
		MaxMessageBytes: 16 << 20,
		WriteTimeout:    10 * time.Second,
		RetryBackoffMax: 500 * time.Millisecond,

		FetchMaxWait:     500 * time.Millisecond,
		FetchMaxBytes:    16 << 20,
		ReadBatchTimeout: 5 * time.Second,
		ReadBackoffMin:   20 * time.Millisecond,
		ReadBackoffMax:   500 * time.Millisecond,

		SessionTimeout:   6 * time.Second,
		RebalanceExtra:   4 * time.Second,
		JoinGroupBackoff: 500 * time.Millisecond,
		PartitionWatch:   2 * time.Second,
		CommitInterval:   100 * time.Millisecond,
		CommitTimeout:    5 * time.Second,
		CloseTimeout:     15 * time.Second,

		RequestRetention: 24 * time.Hour,
		ReplyRetention:   time.Hour,
		ReplyGrace:       time.Second,
		BadReplyTimeout:  5 * time.Second,

		MaxDeadline:    15 * time.Minute,
		RebalanceGrace: 10 * time.Second,
		DrainTimeout:   30 * time.Second,

		InstanceCheck: time.Second,
	}
}
