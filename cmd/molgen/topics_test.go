package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/molgen/molgen/internal/kafkatest"
)

// TestTopicsRemovesOnlyUnusedReplyTopics: molgen topics lists an app's
// reply topics and, with -delete, removes those whose newest record is
// older than -idle (a crashed instance's) and those whose records all
// expired; it keeps those with a recent record (a running instance writes
// heartbeats), those never written (an instance starting), and every
// other topic.
func TestTopicsRemovesOnlyUnusedReplyTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	app := kafkatest.App("sweep")
	reply := "molgen." + app + ".reply."
	live, dead, fresh, expired := reply+"n.live", reply+"n.dead", reply+"n.fresh", reply+"n.expired"
	others := []string{"molgen." + app + ".req.calc", "molgen." + app + "x.reply.n.dead"}
	for _, topic := range append([]string{live, dead, fresh, expired}, others...) {
		createTopic(t, topic)
	}
	old := time.Now().Add(-3 * time.Hour)
	write(t, live, &kgo.Record{Value: []byte("old")}, time.Time{})
	write(t, dead, &kgo.Record{Value: []byte("old")}, old)
	for _, topic := range others {
		write(t, topic, &kgo.Record{Value: []byte("old")}, old)
	}
	// Records that retention removed: the log starts past them.
	write(t, expired, &kgo.Record{Value: []byte("gone")}, time.Time{})
	deleteRecords(t, expired)

	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"topics", "-brokers", strings.Join(brokers, ","), "-app", app}, args...), &out, &errb); code != 0 {
			t.Fatalf("molgen topics %v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}
	out := run()
	t.Logf("molgen topics:\n%s", out)
	for _, want := range []string{
		live + " +in use +[0-9]+s ago",
		dead + " +unused +3h0m[0-9]+s ago",
		fresh + " +in use\\? \\(never written: kept\\) +none",
		expired + " +unused +all expired",
		"2 of 4 reply topics unused",
	} {
		if !matches(out, want) {
			t.Errorf("listing: no line matching %q", want)
		}
	}
	for _, topic := range others {
		if strings.Contains(out, topic) {
			t.Errorf("listing shows %s, not a reply topic of the app", topic)
		}
	}
	if !exists(t, dead) {
		t.Fatal("a listing without -delete deleted a topic")
	}

	out = run("-delete")
	t.Logf("molgen topics -delete:\n%s", out)
	for _, topic := range []string{dead, expired} {
		if !matches(out, topic+" +unused, deleted") {
			t.Errorf("-delete: %s not reported deleted", topic)
		}
		wait := time.Now().Add(15 * time.Second)
		for exists(t, topic) && time.Now().Before(wait) {
			time.Sleep(100 * time.Millisecond)
		}
		if exists(t, topic) {
			t.Errorf("%s survived -delete", topic)
		}
	}
	for _, topic := range append([]string{live, fresh}, others...) {
		if !exists(t, topic) {
			t.Errorf("-delete removed %s", topic)
		}
	}
}

func TestTopicsFlags(t *testing.T) {
	for _, args := range [][]string{
		{"topics", "-app", "a"},
		{"topics", "-brokers", "127.0.0.1:1"},
		{"topics", "-brokers", "127.0.0.1:1", "-app", "a", "-idle", "5m"},
		{"topics", "-brokers", "127.0.0.1:1", "-app", "a", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("molgen %v: exit %d, want 2 (usage)\n%s", args, code, errb.String())
		}
	}
}

func matches(out, pattern string) bool {
	for _, line := range strings.Split(out, "\n") {
		if ok, _ := regexp.MatchString(pattern, line); ok {
			return true
		}
	}
	return false
}

func createTopic(t *testing.T, topic string) {
	t.Helper()
	kafkatest.CreateTopic(t, topic, 1)
}

// write writes m to topic with the timestamp at (zero: now).
func write(t *testing.T, topic string, m *kgo.Record, at time.Time) {
	t.Helper()
	m.Timestamp = at
	kafkatest.Write(t, topic, m)
}

func exists(t *testing.T, topic string) bool {
	t.Helper()
	return kafkatest.Exists(t, topic)
}

// deleteRecords removes every record of partition 0 of topic, as retention
// would.
func deleteRecords(t *testing.T, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, -1 // up to the high watermark
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			t.Fatalf("deleting the records of %s: %v", topic, shard.Err)
		}
		for _, rt := range shard.Resp.(*kmsg.DeleteRecordsResponse).Topics {
			for _, p := range rt.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					t.Fatalf("deleting the records of %s: %v", topic, err)
				}
			}
		}
	}
}

// TestTopicsOverSASLAndMTLS: molgen topics reaches a secured broker with
// the placement's kafka.tls and kafka.sasl (SCRAM-SHA-256 over TLS), and
// with the security flags alone (mTLS); a wrong password is an error.
func TestTopicsOverSASLAndMTLS(t *testing.T) {
	sb := kafkatest.Secure(t)
	dir := t.TempDir()
	app := kafkatest.App("sectopics")
	file := filepath.Join(dir, "p.yaml")
	src := fmt.Sprintf("app: %s\nkafka:\n  brokers: [%s]\n  tls: {ca_file: %s}\n  sasl: {mechanism: SCRAM-SHA-256, username: %s, password_file: %s}\nnodes:\n  n: [x]\n",
		app, sb.SASLSSL, sb.CAFile, sb.Username, sb.PasswordFile)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"topics", "-placement", file, "-timeout", "20s"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no reply topics of app \""+app+"\"") {
		t.Errorf("topics -placement over SASL_SSL: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"topics", "-brokers", sb.MTLS, "-app", app, "-timeout", "20s",
		"-kafka-ca-file", sb.CAFile, "-kafka-cert-file", sb.ClientCert, "-kafka-key-file", sb.ClientKey}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no reply topics") {
		t.Errorf("topics over mTLS: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	t.Setenv("MOLGEN_KAFKA_SASL_PASSWORD", "wrong")
	if code := run([]string{"topics", "-placement", file, "-timeout", "5s"}, &out, &errb); code == 0 {
		t.Errorf("topics with a wrong password succeeded:\n%s", out.String())
	}
}
