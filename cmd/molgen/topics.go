package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/molgen/molgen/runtime/placement"
)

// minIdle is the shortest -idle molgen topics accepts: a running instance
// writes a heartbeat record to its reply topic every 10 minutes (a sixth
// of the reply retention), so three missed heartbeats at least.
const minIdle = 30 * time.Minute

// runTopics lists an app's reply topics and which of them no running
// instance uses, and with -delete removes those.
//
// A reply topic is in use while its instance runs: every instance writes a
// heartbeat record to its own reply topic when it starts and every 10
// minutes, and replies land there too. So a topic whose newest record is
// older than -idle (default 1h, the reply retention) belongs to no running
// instance: its instance crashed (a clean stop deletes a generated
// instance's topic itself) or stopped for good. A topic whose records all
// expired (its log start is past 0) is unused too. A topic that never
// held a record is kept: its instance may be starting (it writes its
// first heartbeat right after creating the topic). Request topics, and
// other apps' topics, are never touched.
//
// An instance with a fixed -instance that comes back after its topic was
// removed creates it again; one that is running but cannot reach Kafka for
// longer than -idle (so writes no heartbeat) recreates it when Kafka is
// back. Record timestamps are the writers' clocks: -idle must stay well
// above any clock skew between the nodes and this command.
func runTopics(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topics", stderr, "(-placement FILE | -brokers host:port[,...] -app APP) [-kafka-tls ...] [-kafka-sasl-mechanism M ...] [-idle 1h] [-delete]")
	placementFile := fs.String("placement", "", "take the brokers, the app and the Kafka TLS and SASL settings from this placement `file` (flags override it)")
	brokers := fs.String("brokers", os.Getenv("MOLGEN_KAFKA_BROKERS"), "Kafka bootstrap brokers `host:port,...` (env MOLGEN_KAFKA_BROKERS; default: the placement's)")
	app := fs.String("app", "", "the placement's `app`: its reply topics are molgen.APP.reply.*")
	security := placement.AddSecurityFlags(fs)
	idle := fs.Duration("idle", time.Hour, "a reply topic whose newest record is older than this is unused (at least 30m)")
	del := fs.Bool("delete", false, "delete the unused reply topics (without it, only list them)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for Kafka")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var placedTLS *placement.TLS
	var placedSASL *placement.SASL
	if *placementFile != "" {
		pl, err := placement.Load(*placementFile)
		if err != nil {
			return err
		}
		if *brokers == "" {
			*brokers = strings.Join(pl.Kafka.Brokers, ",")
		}
		if *app == "" {
			*app = pl.App
		}
		placedTLS, placedSASL = pl.Kafka.TLS, pl.Kafka.SASL
	}
	switch {
	case fs.NArg() > 0:
		return &usageError{"topics takes no arguments"}
	case *brokers == "":
		return &usageError{"-brokers (or -placement with kafka.brokers) is required"}
	case *app == "":
		return &usageError{"-app (or -placement) is required"}
	case *idle < minIdle:
		return &usageError{fmt.Sprintf("-idle %v is below %v: running instances write a heartbeat every 10m", *idle, minIdle)}
	}
	var seeds []string
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("molgen-topics"), kgo.RetryTimeout(*timeout)}
	sec, err := kafkaSecurity(security, placedTLS, placedSASL, stderr)
	if err != nil {
		return fmt.Errorf("molgen topics: %w", err)
	}
	opts = append(opts, sec...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("molgen topics: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	topics, err := replyTopics(ctx, cl, "molgen."+*app+".reply.")
	if err != nil {
		return fmt.Errorf("molgen topics: %w", err)
	}
	now := time.Now()
	if err := judge(ctx, cl, topics, now, *idle); err != nil {
		return fmt.Errorf("molgen topics: %w", err)
	}
	var unused []string
	for _, t := range topics {
		if t.unused {
			unused = append(unused, t.name)
		}
	}
	deleted := map[string]error{}
	if *del && len(unused) > 0 {
		deleted, err = deleteTopics(ctx, cl, unused)
		if err != nil {
			return fmt.Errorf("molgen topics: %w", err)
		}
	}

	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tSTATE\tNEWEST RECORD")
	failed := 0
	for _, t := range topics {
		state := t.state
		if t.unused && *del {
			if err := deleted[t.name]; err != nil {
				state, failed = "unused, not deleted: "+err.Error(), failed+1
			} else {
				state = "unused, deleted"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", t.name, state, t.newest)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	switch {
	case len(topics) == 0:
		fmt.Fprintf(stdout, "no reply topics of app %q\n", *app)
	case !*del && len(unused) > 0:
		fmt.Fprintf(stdout, "%d of %d reply topics unused (no record for %v); -delete removes them\n", len(unused), len(topics), *idle)
	case *del:
		fmt.Fprintf(stdout, "deleted %d of %d unused reply topics\n", len(unused)-failed, len(unused))
	}
	if failed > 0 {
		return fmt.Errorf("molgen topics: %d topics could not be deleted", failed)
	}
	return nil
}

// kafkaSecurity turns the placement's kafka.tls and kafka.sasl, with the
// security flags over them, into franz-go options: the same settings, flags
// and environment variables as a node's.
func kafkaSecurity(f *placement.SecurityFlags, placedTLS *placement.TLS, placedSASL *placement.SASL, stderr io.Writer) ([]kgo.Opt, error) {
	t, s, err := f.Apply(placedTLS, placedSASL)
	if err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if t != nil {
		c, err := t.Config()
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: %w", err)
		}
		if c.InsecureSkipVerify {
			fmt.Fprintln(stderr, "molgen topics: warning: TLS certificate verification is off (insecure_skip_verify): use it for tests only")
		}
		opts = append(opts, kgo.DialTLSConfig(c))
	}
	if s != nil {
		pw, err := s.ResolvePassword()
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		mech, _ := placement.NormalizeMechanism(s.Mechanism)
		switch mech {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: pw}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: pw}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: pw}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}

// replyTopic is one reply topic and the verdict on it.
type replyTopic struct {
	name       string
	partitions []int32
	state      string // what the listing says
	newest     string // the newest record's age, or why there is none
	unused     bool
}

// replyTopics returns the topics whose names start with prefix, sorted.
func replyTopics(ctx context.Context, cl *kgo.Client, prefix string) ([]*replyTopic, error) {
	req := kmsg.NewPtrMetadataRequest() // no topics: all of them
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var out []*replyTopic
	for _, t := range resp.Topics {
		if t.Topic == nil || !strings.HasPrefix(*t.Topic, prefix) {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("metadata of %s: %w", *t.Topic, err)
		}
		rt := &replyTopic{name: *t.Topic}
		for _, p := range t.Partitions {
			rt.partitions = append(rt.partitions, p.Partition)
		}
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// Special timestamps of ListOffsets.
const (
	earliest     = -2
	latest       = -1
	maxTimestamp = -3 // the record with the largest timestamp (Kafka 3.0+, ListOffsets v7)
)

// judge decides, per topic, whether it is in use. Any error leaves every
// topic undecided: nothing is deleted on partial knowledge.
func judge(ctx context.Context, cl *kgo.Client, topics []*replyTopic, now time.Time, idle time.Duration) error {
	if len(topics) == 0 {
		return nil
	}
	offsets := map[int64]map[string]map[int32]kmsg.ListOffsetsResponseTopicPartition{}
	for _, ts := range []int64{earliest, latest, maxTimestamp} {
		res, err := listOffsets(ctx, cl, topics, ts)
		if err != nil {
			return err
		}
		offsets[ts] = res
	}
	for _, t := range topics {
		var (
			written, expired bool
			newest           int64 = -1
		)
		for _, p := range t.partitions {
			first := offsets[earliest][t.name][p].Offset
			last := offsets[latest][t.name][p].Offset
			if last > first {
				written = true
				newest = max(newest, offsets[maxTimestamp][t.name][p].Timestamp)
			} else if last > 0 {
				expired = true // records were written, and all expired
			}
		}
		switch {
		case written && newest < 0:
			t.state, t.newest = "in use? (no timestamps: kept)", "unknown"
		case written:
			age := now.Sub(time.UnixMilli(newest))
			t.newest = age.Round(time.Second).String() + " ago"
			if age > idle {
				t.state, t.unused = "unused", true
			} else {
				t.state = "in use"
			}
		case expired:
			t.state, t.newest, t.unused = "unused", "all expired", true
		default:
			t.state, t.newest = "in use? (never written: kept)", "none"
		}
	}
	return nil
}

// listOffsets asks, for every partition of topics, the offset (and
// timestamp) of ts.
func listOffsets(ctx context.Context, cl *kgo.Client, topics []*replyTopic, ts int64) (map[string]map[int32]kmsg.ListOffsetsResponseTopicPartition, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	for _, t := range topics {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t.name
		for _, p := range t.partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = ts
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	out := map[string]map[int32]kmsg.ListOffsetsResponseTopicPartition{}
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, fmt.Errorf("listing offsets: %w", shard.Err)
		}
		resp := shard.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("listing offsets of %s/%d: %w", t.Topic, p.Partition, err)
				}
				if out[t.Topic] == nil {
					out[t.Topic] = map[int32]kmsg.ListOffsetsResponseTopicPartition{}
				}
				out[t.Topic][p.Partition] = p
			}
		}
	}
	for _, t := range topics {
		for _, p := range t.partitions {
			if _, ok := out[t.name][p]; !ok {
				return nil, fmt.Errorf("listing offsets: no answer for %s/%d", t.name, p)
			}
		}
	}
	return out, nil
}

// deleteTopics deletes topics and returns each one's error.
func deleteTopics(ctx context.Context, cl *kgo.Client, topics []string) (map[string]error, error) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 30000
	for _, name := range topics {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		n := name
		rt.Topic = &n
		req.Topics = append(req.Topics, rt)
		req.TopicNames = append(req.TopicNames, name)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("deleting topics: %w", err)
	}
	out := map[string]error{}
	for _, t := range resp.Topics {
		if t.Topic != nil {
			out[*t.Topic] = kerr.ErrorForCode(t.ErrorCode)
		}
	}
	for _, name := range topics {
		if _, ok := out[name]; !ok {
			out[name] = fmt.Errorf("no answer")
		}
	}
	return out, nil
}
