package nodemain

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
	"github.com/molgen/molgen/runtime/placement"
)

const securedPlacement = `app: a
kafka:
  brokers: [k:9094]
  tls: {ca_file: /p/ca.pem}
  sasl: {mechanism: SCRAM-SHA-256, username: placed, password_env: PLACED_PW}
nodes:
  n: [x]
`

// TestSecurityFlagsOverrideThePlacement: flags win over env, env over the
// placement; the password never has a flag.
func TestSecurityFlagsOverrideThePlacement(t *testing.T) {
	pl, err := placement.Parse("p.yaml", []byte(securedPlacement))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		env      map[string]string
		args     []string
		tls      *runtime.KafkaTLS
		sasl     *runtime.KafkaSASL
		noTLSPl  bool
		password string
	}{
		{name: "placement alone",
			tls:  &runtime.KafkaTLS{CAFile: "/p/ca.pem"},
			sasl: &runtime.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: "placed", PasswordEnv: "PLACED_PW"}},
		{name: "env over placement",
			env:  map[string]string{"MOLGEN_KAFKA_CA_FILE": "/e/ca.pem", "MOLGEN_KAFKA_CERT_FILE": "/e/c.pem", "MOLGEN_KAFKA_KEY_FILE": "/e/k.pem", "MOLGEN_KAFKA_SASL_MECHANISM": "scram-sha-512", "MOLGEN_KAFKA_SASL_PASSWORD": "pw"},
			tls:  &runtime.KafkaTLS{CAFile: "/e/ca.pem", CertFile: "/e/c.pem", KeyFile: "/e/k.pem"},
			sasl: &runtime.KafkaSASL{Mechanism: "scram-sha-512", Username: "placed", PasswordEnv: "PLACED_PW", Password: "pw"}},
		{name: "flags over env",
			env:  map[string]string{"MOLGEN_KAFKA_SASL_USERNAME": "envuser", "MOLGEN_KAFKA_SERVER_NAME": "env.example"},
			args: []string{"-kafka-sasl-username", "flaguser", "-kafka-server-name", "flag.example", "-kafka-sasl-password-file", "/f/pw"},
			tls:  &runtime.KafkaTLS{CAFile: "/p/ca.pem", ServerName: "flag.example"},
			sasl: &runtime.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: "flaguser", PasswordFile: "/f/pw"}},
		{name: "TLS off", args: []string{"-kafka-tls=false"}, noTLSPl: true,
			sasl: &runtime.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: "placed", PasswordEnv: "PLACED_PW"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("n", flag.ContinueOnError)
			f := placement.AddSecurityFlags(fs)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			opts := runtime.Options{Placement: pl}
			if err := applySecurity(f, pl, &opts); err != nil {
				t.Fatal(err)
			}
			if (opts.TLS == nil) != (c.tls == nil) || (c.tls != nil && *opts.TLS != *c.tls) {
				t.Errorf("TLS = %+v, want %+v", opts.TLS, c.tls)
			}
			if (opts.SASL == nil) != (c.sasl == nil) || (c.sasl != nil && *opts.SASL != *c.sasl) {
				t.Errorf("SASL = %+v, want %+v", opts.SASL, c.sasl)
			}
			if c.noTLSPl != (opts.Placement.Kafka.TLS == nil) {
				t.Errorf("placement TLS = %+v", opts.Placement.Kafka.TLS)
			}
			if pl.Kafka.TLS == nil || pl.Kafka.TLS.CAFile != "/p/ca.pem" || pl.Kafka.SASL.Username != "placed" {
				t.Errorf("apply changed the parsed placement: %+v %+v", pl.Kafka.TLS, pl.Kafka.SASL)
			}
		})
	}
}

func TestSecurityFlagErrors(t *testing.T) {
	for args, want := range map[string]string{
		"-kafka-sasl-mechanism GSSAPI":      `unknown SASL mechanism "GSSAPI"`,
		"-kafka-tls maybe":                  `-kafka-tls (MOLGEN_KAFKA_TLS) must be true or false, not "maybe"`,
		"-kafka-cert-file c.pem":            "needs both cert_file and key_file",
		"-kafka-insecure-skip-verify often": "must be true or false",
	} {
		fs := flag.NewFlagSet("n", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := placement.AddSecurityFlags(fs)
		if err := fs.Parse(strings.Fields(args)); err != nil {
			t.Fatal(err)
		}
		opts := runtime.Options{}
		if err := applySecurity(f, nil, &opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

// TestHintsNameSettingsAsGiven: a node told to use TLS against a
// plaintext listener says so at once, and its hint names the setting the
// way the node was given it: the environment variable, the flag, or the
// placement key.
func TestHintsNameSettingsAsGiven(t *testing.T) {
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	p := Program{
		Node: "a", PlacementFile: "p.yaml", Placement: twoNodes,
		Services: []string{"svc"}, Mains: []string{"m"},
		Setup: func(context.Context, *runtime.Node) error { return nil },
		Run:   []Main{{Name: "m", Run: func(ctx context.Context, n *runtime.Node) error { return nil }}},
	}
	placed := p
	placed.Placement = "app: t\nkafka:\n  tls: true\nnodes:\n  a: [m]\n  b: [svc]\n"
	cases := []struct {
		name string
		p    Program
		env  string
		args []string
		says string
	}{
		{"environment", p, "true", nil, "remove MOLGEN_KAFKA_TLS, or use the TLS port"},
		{"flag", p, "", []string{"-kafka-tls=true"}, "remove -kafka-tls, or use the TLS port"},
		{"flag over environment", p, "true", []string{"-kafka-tls=true"}, "remove -kafka-tls, or use the TLS port"},
		{"placement", placed, "", nil, "remove kafka.tls, or use the TLS port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("MOLGEN_KAFKA_TLS", c.env)
			start := time.Now()
			status, out := runNodeInTest(t, c.p, append([]string{"-brokers", brokers, "-kafka-wait", "20s"}, c.args...)...)
			if status != 1 {
				t.Errorf("status = %d, want 1\n%s", status, out)
			}
			if !strings.Contains(out, "this looks like a plaintext listener") || !strings.Contains(out, c.says) {
				t.Errorf("stderr does not say %q:\n%s", c.says, out)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("failed after %v: not at once", took)
			}
		})
	}
}
