package nodemain

import (
	"flag"
	"io"
	"strings"
	"testing"

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
