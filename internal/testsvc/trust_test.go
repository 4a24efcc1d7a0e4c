package testsvc

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
)

// The tests in this file write to an app's topics as anyone with write
// rights on them could (a plain Kafka client, no molgen), and check what
// molgen's nodes do with it: requests whose reply topic is not one of the
// app's are dropped, and with signing keys, requests and replies that the
// keys did not sign are dropped, never run or returned.

var (
	testKey  = bytes.Repeat([]byte{0x5a}, 32)
	otherKey = bytes.Repeat([]byte{0xa5}, 32)
)

// signedWith signs the node's messages with the app key k.
func signedWith(k []byte) func(*runtime.Options) {
	return func(o *runtime.Options) {
		o.Signing = &runtime.Signing{App: &runtime.KeySource{Keys: [][]byte{k}}}
	}
}

func hostCalcRelay(impl *CalcImpl) func(*runtime.Node) error {
	return func(n *runtime.Node) error {
		if err := RegisterCalc(n, impl); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	}
}

func hostCodec(n *runtime.Node) error { return RegisterCodec(n, echo{}) }

// waitStats polls n's Stats until ok holds, for at most 15s.
func waitStats(t *testing.T, n *runtime.Node, ok func(runtime.Stats) bool) runtime.Stats {
	t.Helper()
	wait := time.Now().Add(15 * time.Second)
	for !ok(n.Stats()) && time.Now().Before(wait) {
		time.Sleep(20 * time.Millisecond)
	}
	return n.Stats()
}

func rawRequest(method, id, replyTo string, payload []byte, extra ...string) *kgo.Record {
	deadline := time.Now().Add(5 * time.Second).UTC().Format(time.RFC3339Nano)
	kv := []string{"molgen-version", "2", "molgen-method", method, "molgen-deadline", deadline}
	if id != "" {
		kv = append(kv, "molgen-id", id, "molgen-reply-to", replyTo)
	}
	return &kgo.Record{Value: payload, Headers: headers(append(kv, extra...)...)}
}

// TestRepliesGoOnlyToTheAppsReplyTopics: a server writes a reply only to
// a reply topic of its own app. Requests naming another topic (a topic
// outside molgen, another service's request topic, another app's reply
// topic) are not run, nothing is written there, and each is counted.
func TestRepliesGoOnlyToTheAppsReplyTopics(t *testing.T) {
	app := kafkatest.App("replyto")
	server := remoteNode(t, app, serverClient, "server", hostCalcRelay(&CalcImpl{}))
	ledger := app + ".payments.ledger"
	createTopic(t, ledger, 1)
	relayTopic := "molgen." + app + ".req.relay"
	otherApp := "molgen." + app + "x.reply.client.y" // another app whose name extends this one's
	createTopic(t, otherApp, 1)
	targets := []string{ledger, relayTopic, otherApp, "molgen." + app + ".reply.", "molgen." + app + ".reply.a b"}
	var msgs []*kgo.Record
	for i, to := range targets {
		msgs = append(msgs, rawRequest("Add", "x."+string(rune('1'+i)), to, []byte{2, 4}))
	}
	writeRaw(t, "molgen."+app+".req.calc", msgs...)
	st := waitStats(t, server, func(st runtime.Stats) bool { return st.Misdirected >= int64(len(targets)) })
	if st.Misdirected != int64(len(targets)) || st.Served != 0 {
		t.Fatalf("stats %+v: want %d misdirected requests, none run", st, len(targets))
	}
	for _, topic := range []string{ledger, relayTopic, otherApp} {
		if recs := kafkatest.Records(t, topic); len(recs) != 0 {
			t.Errorf("%d records written to %s", len(recs), topic)
		}
	}
	// The app's own callers are still answered.
	client := remoteNode(t, app, serverClient, "client", hostCodec)
	if v, err := NewCalcClient(client).Add(context.Background(), 1, 2); err != nil || v != 3 {
		t.Fatalf("Add = %d, %v", v, err)
	}
}

// TestSignedRequestsAndReplies: with a signing key, every request and
// reply carries a signature; a request that is unsigned, signed with
// another key, or changed after signing is dropped and counted, never run
// or answered.
func TestSignedRequestsAndReplies(t *testing.T) {
	app := kafkatest.App("signed")
	server := remoteNodeWith(t, app, serverClient, "server", signedWith(testKey), hostCalcRelay(&CalcImpl{}))
	client := remoteNodeWith(t, app, serverClient, "client", signedWith(testKey), hostCodec)
	ctx := context.Background()
	if v, err := NewCalcClient(client).Add(ctx, 20, 22); err != nil || v != 42 {
		t.Fatalf("a signed call: %d, %v", v, err)
	}
	reqTopic := "molgen." + app + ".req.calc"
	var signed *kgo.Record
	for _, m := range kafkatest.Records(t, reqTopic) {
		if _, ok := kafkatest.Header(m, "molgen-sig"); ok {
			signed = m
		}
	}
	if signed == nil {
		t.Fatalf("no signed request in %s", reqTopic)
	}
	sig, ok := kafkatest.Header(signed, "molgen-sig")
	if !ok {
		t.Fatalf("no signed request in %s", reqTopic)
	}
	replyTo, _ := kafkatest.Header(signed, "molgen-reply-to")
	// A node with another key signs its requests too, but not with ours.
	stranger := remoteNodeWith(t, app, serverClient, "client", signedWith(otherKey), hostCodec)
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if _, err := NewCalcClient(stranger).Add(short, 1, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call signed with another key: %v, want it dropped (DeadlineExceeded)", err)
	}
	// The recorded request with its payload changed, and with its
	// signature removed.
	changed := &kgo.Record{Value: []byte{200, 1, 2}, Headers: signed.Headers}
	stripped := &kgo.Record{}
	for _, h := range signed.Headers {
		if h.Key != "molgen-sig" {
			stripped.Headers = append(stripped.Headers, h)
		}
	}
	stripped.Value = signed.Value
	writeRaw(t, reqTopic,
		changed,
		stripped,
		rawRequest("Add", "x.1", replyTo, []byte{2, 4}),
		rawRequest("Add", "x.2", replyTo, []byte{2, 4}, "molgen-sig", sig))
	st := waitStats(t, server, func(st runtime.Stats) bool { return st.Forged >= 5 })
	if st.Forged != 5 || st.Served != 1 {
		t.Fatalf("server stats %+v: want the 5 forged requests dropped, only the signed call run", st)
	}
	if v, err := NewCalcClient(client).Add(ctx, 2, 3); err != nil || v != 5 {
		t.Fatalf("after the forgeries, Add = %d, %v", v, err)
	}
}

// TestForgedRepliesAreDropped: a process that reads a request topic and
// answers first (it does not know the key) no longer answers anyone's
// call: its replies are dropped and counted, and every call returns the
// server's result. Without keys the same attack wins, which shows that
// the test's forger is fast enough to matter.
func TestForgedRepliesAreDropped(t *testing.T) {
	for _, keys := range []bool{false, true} {
		name := map[bool]string{false: "unsigned", true: "signed"}[keys]
		t.Run(name, func(t *testing.T) {
			app := kafkatest.App("forged" + name)
			opts := func(*runtime.Options) {}
			if keys {
				opts = signedWith(testKey)
			}
			remoteNodeWith(t, app, serverClient, "server", opts, hostCalcRelay(&CalcImpl{}))
			client := remoteNodeWith(t, app, serverClient, "client", opts, hostCodec)
			stop := forgeReplies(t, "molgen."+app+".req.calc")
			defer stop()
			c := NewCalcClient(client)
			forgedWins := 0
			for i := range 5 {
				got, err := c.Slow(context.Background(), 400*time.Millisecond, "genuine")
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if got == "forged" {
					forgedWins++
				}
			}
			st := client.Stats()
			if keys && (forgedWins != 0 || st.Forged == 0) {
				t.Errorf("with keys: %d of 5 calls returned the forged reply (stats %+v)", forgedWins, st)
			}
			if !keys && forgedWins == 0 {
				t.Errorf("without keys the forger never won: the test does not show the attack")
			}
			t.Logf("%s: the forger answered %d of 5 calls; caller stats %+v", name, forgedWins, st)
		})
	}
}

// forgeReplies answers every Slow request written to topic with an ok
// reply "forged", until the returned stop is called.
func forgeReplies(t *testing.T, topic string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := map[string]bool{}
		for ctx.Err() == nil {
			for _, m := range kafkatest.Records(t, topic) {
				id, _ := kafkatest.Header(m, "molgen-id")
				to, _ := kafkatest.Header(m, "molgen-reply-to")
				if id == "" || seen[id] {
					continue
				}
				seen[id] = true
				writeRaw(t, to, &kgo.Record{Value: append([]byte{6}, "forged"...), Headers: headers(
					"molgen-version", "2", "molgen-id", id, "molgen-status", "ok", "molgen-sig", strings.Repeat("0", 8)+"."+strings.Repeat("A", 43))})
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// TestServiceKeys: a service with a key of its own needs it on every node
// that hosts it (else the node does not start) and on every node that
// calls it (else the call fails at once, saying so); other services keep
// the app's key.
func TestServiceKeys(t *testing.T) {
	app := kafkatest.App("svckeys")
	yaml := serverClient + `security:
  signing:
    key_env: MOLGEN_TEST_MAIN_KEY
    services:
      calc: {key_env: MOLGEN_TEST_CALC_KEY}
`
	t.Setenv("MOLGEN_TEST_MAIN_KEY", "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=")
	pl, err := runtime.ParsePlacement("p.yaml", []byte(strings.ReplaceAll(yaml, "APP", app)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "server", Brokers: kafkatest.Brokers(t), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := hostCalcRelay(&CalcImpl{})(n); err != nil {
		t.Fatal(err)
	}
	err = n.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `hosts service "calc" but cannot read its signing key`) || !strings.Contains(err.Error(), "MOLGEN_TEST_CALC_KEY") {
		t.Fatalf("a node hosting calc without calc's key started: %v", err)
	}
	n.Close()
	// The client, without calc's key, starts; its calls to calc fail at
	// once, and calls to relay (app key) go through once a server runs.
	client := remoteNode(t, app, yaml, "client", hostCodec)
	start := time.Now()
	_, err = NewCalcClient(client).Add(context.Background(), 1, 2)
	if err == nil || !strings.Contains(err.Error(), `service "calc" signs with a key of its own`) || time.Since(start) > time.Second {
		t.Fatalf("a call to calc without its key: %v after %v", err, time.Since(start))
	}
	t.Setenv("MOLGEN_TEST_CALC_KEY", "paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU=")
	remoteNode(t, app, yaml, "server", hostCalcRelay(&CalcImpl{}))
	withKey := remoteNode(t, app, yaml, "client", hostCodec)
	if v, err := NewCalcClient(withKey).Add(context.Background(), 1, 2); err != nil || v != 3 {
		t.Fatalf("a call to calc with its key: %d, %v", v, err)
	}
	if v, err := NewRelayClient(client).Sqrt(context.Background(), 16); err != nil || v != 4 {
		t.Fatalf("a call to relay (app key) from the node without calc's key: %d, %v", v, err)
	}
}
