package kafka

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

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
	// Partitions of the request topics the transport creates.
	Partitions int
	// ReplicationFactor of the topics the transport creates; 0 takes the
	// cluster's default.replication.factor.
	ReplicationFactor int
	Logger            *slog.Logger
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

	conns *connErrors // the clients' last connection errors (set by New)
}

// Security is how the Kafka clients protect and authenticate their
// connections. The zero value is plaintext without authentication.
type Security struct {
	// TLS, when set, encrypts every connection.
	TLS *tls.Config
	// SASL, when set, authenticates every connection.
	SASL *SASL
	// Names, when set, names the security settings in hints the way the
	// node was given them (a flag, an environment variable), by placement
	// key; a key it lacks is named as itself.
	Names map[string]string
}

// name returns how hints name the setting with placement key key.
func (s Security) name(key string) string {
	if n := s.Names[key]; n != "" {
		return n
	}
	return key
}

// SASL is a SASL mechanism and its credentials.
type SASL struct {
	Mechanism          string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username, Password string
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

// Group protocols a server may join its consumer groups with.
const (
	// GroupClassic is Kafka's classic protocol with the cooperative-sticky
	// assignor: a rebalance moves only the partitions that change owner,
	// and the others keep being served.
	GroupClassic = "classic"
	// GroupConsumer is KIP-848's protocol (Kafka 4.0+), where the broker
	// assigns partitions. Stock Kafka heartbeats it every 5s at least, so a
	// new instance waits up to that long for its partitions.
	GroupConsumer = "consumer"
)

// Settings are the knobs of the Kafka clients, in one place: each value
// says why it is what it is. DefaultSettings gives molgen's values; the
// node overrides the ones its Options expose.
type Settings struct {
	// ConnectTimeout bounds how long New waits for a broker that is
	// starting before it fails with an error naming the brokers.
	ConnectTimeout time.Duration
	// MetadataProbe bounds one metadata request of a probe (at start, and
	// the watch's).
	MetadataProbe time.Duration
	// ConnectRetry is the pause between two probes of a broker that does
	// not answer yet.
	ConnectRetry time.Duration

	// DialTimeout bounds opening one connection.
	DialTimeout time.Duration
	// IdleTimeout closes connections unused this long.
	IdleTimeout time.Duration
	// MetadataMaxAge is how often the clients refresh their metadata
	// without a reason: partitions added to a request topic are served
	// within it.
	MetadataMaxAge time.Duration
	// AdminTimeout bounds one admin request (create topics, offsets,
	// group lookups).
	AdminTimeout time.Duration

	// Linger is how long the producer waits for more records before it
	// sends a batch. Zero: a request or reply goes out at once, and
	// records that come while a produce request is in flight gather for
	// the next one (franz-go's default, 10ms, would add it to every call).
	Linger time.Duration
	// Gather is the longest a record waits for the records written before
	// it to be acknowledged, so that it goes to the producer with the
	// others that came meanwhile, in one produce request (gather.go).
	// A record written when none is unacknowledged goes at once. Zero:
	// every record goes at once (franz-go then sends up to five small
	// requests in flight per broker).
	Gather time.Duration
	// ProduceBuffer bounds the bytes of records buffered and in flight; a
	// write beyond it waits for room, until its deadline.
	ProduceBuffer int64
	// MaxMessageBytes bounds a request or reply, whatever the brokers
	// take.
	MaxMessageBytes int64
	// WriteTimeout is how long a broker may take to have a produce request
	// acknowledged by every in-sync replica.
	WriteTimeout time.Duration

	// FetchMaxWait is how long a broker holds a fetch that has nothing to
	// return. Records that arrive end the wait at once; it bounds how long
	// a partition added to a consumer waits for its first fetch.
	FetchMaxWait time.Duration
	// FetchMaxBytes bounds one fetch response.
	FetchMaxBytes int32
	// MaxDecompress bounds what one fetched batch may decompress to: a
	// compressed batch that would take more (a hostile "compression
	// bomb") is skipped, counted and logged.
	MaxDecompress int

	// GroupProtocol is GroupClassic (default) or GroupConsumer.
	GroupProtocol string
	// SessionTimeout is the consumer-group session: how long a dead
	// instance keeps its partitions before others take its requests.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often a member heartbeats, and so how soon
	// it hears of a rebalance.
	HeartbeatInterval time.Duration
	// CommitInterval is how often offsets of finished requests are
	// committed (those up to the first request of a partition still
	// running); a rebalance and a drain commit at once.
	CommitInterval time.Duration
	// CloseTimeout bounds leaving the group at the end of a drain.
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

	// DedupCalls bounds how many calls an instance remembers to run none
	// twice (dedup.go); DedupBytes bounds the replies it keeps to answer
	// copies of a call that already ran.
	DedupCalls int
	DedupBytes int64

	// MaxDeadline bounds how far in the future a request's deadline may
	// be: a later one (a hostile or broken caller, or a caller with no
	// limit) is clamped to it, so that no request holds a slot longer.
	MaxDeadline time.Duration
	// RebalanceGrace is how long a member whose partitions are being
	// reassigned (another instance joins or leaves) lets the requests of
	// those partitions finish, and commits them, before it hands them
	// over: requests that finish within it are never run again elsewhere.
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
		MetadataProbe:  2 * time.Second,
		ConnectRetry:   250 * time.Millisecond,

		DialTimeout:    5 * time.Second,
		IdleTimeout:    30 * time.Second,
		MetadataMaxAge: 5 * time.Second,
		AdminTimeout:   10 * time.Second,

		Linger:          0,
		Gather:          time.Millisecond,
		ProduceBuffer:   64 << 20,
		MaxMessageBytes: 16 << 20,
		WriteTimeout:    10 * time.Second,

		FetchMaxWait:  time.Second,
		FetchMaxBytes: 16 << 20,
		MaxDecompress: 64 << 20,

		GroupProtocol:     GroupClassic,
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond,
		CommitInterval:    100 * time.Millisecond,
		CloseTimeout:      15 * time.Second,

		RequestRetention: 24 * time.Hour,
		ReplyRetention:   time.Hour,
		ReplyGrace:       time.Second,
		BadReplyTimeout:  5 * time.Second,

		DedupCalls: 100_000,
		DedupBytes: 16 << 20,

		MaxDeadline:    15 * time.Minute,
		RebalanceGrace: 10 * time.Second,
		DrainTimeout:   30 * time.Second,

		InstanceCheck: time.Second,
	}
}
