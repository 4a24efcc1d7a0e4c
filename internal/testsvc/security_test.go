package testsvc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/runtime"
)

// The security tests run against the real SASL_SSL broker of
// scripts/kafka/kafka.sh start -secure when MOLGEN_TEST_SECURE names its
// env file (.ci/run does), else against embedded kfake brokers with SASL
// over TLS and with mTLS. The placement's kafka.tls and kafka.sasl keys
// configure every node here, as they would a node binary.

// securePlacement is a placement of two nodes (calls cross Kafka) at
// broker with the given kafka.tls and kafka.sasl sections. A call waits
// for the serving node's group join (wait_for_instances), which a loaded
// machine can make slower than the ErrNoInstance check.
func securePlacement(broker, tls, sasl string) string {
	return fmt.Sprintf(`app: APP
kafka:
  brokers: [%s]
  partitions: 2
  wait_for_instances: true
%s%snodes:
  front: [codec]
  back: [calc]
`, broker, tls, sasl)
}

func tlsSection(sb *kafkatest.SecureBroker, client bool) string {
	s := "  tls:\n    ca_file: " + sb.CAFile + "\n"
	if client {
		s += "    cert_file: " + sb.ClientCert + "\n    key_file: " + sb.ClientKey + "\n"
	}
	return s
}

func saslSection(mech, user, passwordFile string) string {
	return fmt.Sprintf("  sasl:\n    mechanism: %s\n    username: %s\n    password_file: %s\n", mech, user, passwordFile)
}

// TestSecureCallsOverSASLAndMTLS: calls cross nodes over TLS with each
// SASL mechanism, and over mTLS.
func TestSecureCallsOverSASLAndMTLS(t *testing.T) {
	sb := kafkatest.Secure(t)
	cases := []struct{ name, yaml string }{
		{"SCRAM-SHA-512", securePlacement(sb.SASLSSL, tlsSection(sb, false), saslSection("SCRAM-SHA-512", sb.Username, sb.PasswordFile))},
		{"SCRAM-SHA-256", securePlacement(sb.SASLSSL, tlsSection(sb, false), saslSection("SCRAM-SHA-256", sb.Username, sb.PasswordFile))},
		{"PLAIN", securePlacement(sb.SASLSSL, tlsSection(sb, false), saslSection("PLAIN", sb.Username, sb.PasswordFile))},
		{"mTLS", securePlacement(sb.MTLS, tlsSection(sb, true), "")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			app := kafkatest.App("secure")
			secureNode(t, app, c.yaml, "back", func(n *runtime.Node) error { return RegisterCalc(n, &CalcImpl{}) })
			front := secureNode(t, app, c.yaml, "front", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sum, err := NewCalcClient(front).Add(ctx, 40, 2)
			if err != nil || sum != 42 {
				t.Fatalf("Add over %s: %d, %v", c.name, sum, err)
			}
		})
	}
}

// secureNode starts a node of yaml with no broker override: the brokers,
// TLS and SASL all come from the placement.
func secureNode(t *testing.T, app, yaml, node string, register func(*runtime.Node) error) *runtime.Node {
	t.Helper()
	return remoteNodeWith(t, app, yaml, node, func(o *runtime.Options) { o.Brokers = nil }, register)
}

// TestSecureConnectFailuresAreExplained: a wrong password, a wrong
// mechanism, plaintext against the TLS port, an untrusted broker
// certificate and a missing client certificate each fail Start within the
// connect timeout, with an error that names the broker and the cause in
// words.
func TestSecureConnectFailuresAreExplained(t *testing.T) {
	sb := kafkatest.Secure(t)
	wrongPW := t.TempDir() + "/wrong"
	writeFile(t, wrongPW, "not-the-password\n")
	const connect = 4 * time.Second
	cases := []struct {
		name, broker, yaml string
		want               []string
		// fake is what the error says on kfake, which closes the
		// connection on bad credentials where Kafka answers with an error
		// code (nil: the same as want).
		fake []string
		// atOnce: the cause shows in the first answer, so Start fails
		// well before the connect timeout.
		atOnce bool
	}{
		{"wrong password", sb.SASLSSL, tlsSection(sb, false) + saslSection("SCRAM-SHA-512", sb.Username, wrongPW),
			[]string{"SASL authentication failed", `user "molgen"`, "SCRAM-SHA-512", "wrong password"},
			[]string{"closed the connection", "refused the SASL credentials", "SCRAM-SHA-512"}, false},
		{"wrong password PLAIN", sb.SASLSSL, tlsSection(sb, false) + saslSection("PLAIN", sb.Username, wrongPW),
			[]string{"SASL authentication failed", "PLAIN"},
			[]string{"closed the connection", "refused the SASL credentials", "PLAIN"}, false},
		{"wrong mechanism", sb.SASLSSL, tlsSection(sb, false) + saslSection("SCRAM-SHA-256", sb.Username512, sb.PasswordFile),
			[]string{"SASL authentication failed", `user "molgen512"`, "without credentials for SCRAM-SHA-256"},
			[]string{"closed the connection", "refused the SASL credentials", "SCRAM-SHA-256"}, false},
		{"plaintext against the TLS port", sb.SASLSSL, saslSection("SCRAM-SHA-512", sb.Username, sb.PasswordFile),
			[]string{"plaintext", "set kafka.tls"}, nil, false},
		{"TLS against the plaintext port", sb.Plaintext, tlsSection(sb, false),
			[]string{"TLS", "this looks like a plaintext listener", "remove kafka.tls"}, nil, true},
		{"untrusted certificate", sb.SASLSSL, "  tls: true\n" + saslSection("SCRAM-SHA-512", sb.Username, sb.PasswordFile),
			[]string{"TLS", "not trust", "kafka.tls.ca_file"}, nil, true},
		{"no client certificate for mTLS", sb.MTLS, tlsSection(sb, false),
			[]string{"TLS", "requires a client certificate"}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			yaml := strings.ReplaceAll(securePlacement(c.broker, c.yaml, ""), "APP", kafkatest.App("insecure"))
			pl, err := runtime.ParsePlacement("secure.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			var logs proctest.Buffer
			n, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "back", ConnectTimeout: connect,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if err := RegisterCalc(n, &CalcImpl{}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = n.Start(context.Background())
			took := time.Since(start)
			n.Close()
			if err == nil {
				t.Fatalf("Start succeeded")
			}
			msg := err.Error()
			t.Logf("after %v: %s", took.Round(time.Millisecond), msg)
			if took > connect+2*time.Second {
				t.Errorf("failed after %v, more than the connect timeout %v", took, connect)
			}
			if c.atOnce && took > connect/2 {
				t.Errorf("failed after %v: the first answer shows the cause, so this should fail at once", took)
			}
			if !strings.Contains(msg, "cannot reach Kafka at "+c.broker) {
				t.Errorf("the error does not name the broker %s: %s", c.broker, msg)
			}
			want := c.want
			if !sb.Real && c.fake != nil {
				want = c.fake
			}
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error lacks %q: %s", w, msg)
				}
			}
			if pw := sb.Password(t); strings.Contains(msg, pw) || strings.Contains(logs.String(), pw) {
				t.Errorf("the password leaked into the error or logs")
			}
		})
	}
}

func writeFile(t *testing.T, file, content string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInsecureSkipVerifyConnectsAndWarns: kafka.tls.insecure_skip_verify
// accepts the untrusted certificate, and the node says so at WARN.
func TestInsecureSkipVerifyConnectsAndWarns(t *testing.T) {
	sb := kafkatest.Secure(t)
	yaml := strings.ReplaceAll(securePlacement(sb.SASLSSL, "  tls: {insecure_skip_verify: true}\n", saslSection("SCRAM-SHA-512", sb.Username, sb.PasswordFile)), "APP", kafkatest.App("skipverify"))
	pl, err := runtime.ParsePlacement("secure.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var logs proctest.Buffer
	n, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "front", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if !strings.Contains(logs.String(), `level=WARN msg="TLS certificate verification is off`) {
		t.Errorf("no warning:\n%s", logs.String())
	}
}
