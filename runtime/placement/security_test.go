package placement

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlacementSecurityKeys(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`app: a
kafka:
  brokers: [kafka.example.com:9094]
  tls:
    ca_file: /etc/molgen/ca.pem
    cert_file: /etc/molgen/client.pem
    key_file: /etc/molgen/client-key.pem
    server_name: kafka.example.com
  sasl:
    mechanism: scram-sha-512
    username: orders
    password_env: KAFKA_PASSWORD
nodes:
  n: [x]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{CAFile: "/etc/molgen/ca.pem", CertFile: "/etc/molgen/client.pem", KeyFile: "/etc/molgen/client-key.pem", ServerName: "kafka.example.com"}
	if p.Kafka.TLS == nil || *p.Kafka.TLS != want {
		t.Errorf("tls = %+v, want %+v", p.Kafka.TLS, want)
	}
	wantS := SASL{Mechanism: "SCRAM-SHA-512", Username: "orders", PasswordEnv: "KAFKA_PASSWORD"}
	if p.Kafka.SASL == nil || *p.Kafka.SASL != wantS {
		t.Errorf("sasl = %+v, want %+v", p.Kafka.SASL, wantS)
	}

	for src, want := range map[string]*TLS{
		"tls: true":                         {},
		"tls: false":                        nil,
		"tls: {enabled: false, ca_file: x}": nil,
		"tls: {insecure_skip_verify: true}": {InsecureSkipVerify: true},
	} {
		p, err := Parse("p.yaml", []byte("app: a\nkafka:\n  "+src+"\nnodes:\n  n: [x]\n"))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if (p.Kafka.TLS == nil) != (want == nil) || (want != nil && *p.Kafka.TLS != *want) {
			t.Errorf("%s: tls = %+v, want %+v", src, p.Kafka.TLS, want)
		}
	}
}

// TestPlacementSecurityErrors: every problem of the tls and sasl sections
// is reported at once, at its line and column, and secrets are refused.
func TestPlacementSecurityErrors(t *testing.T) {
	src := `app: a
kafka:
  tls:
    cert_file: c.pem
    ca: "-----BEGIN CERTIFICATE-----"
    insecure_skip_verify: sometimes
    verify: true
  sasl:
    mechanism: GSSAPI
    password: hunter2
    password_env: A
    password_file: /f
nodes:
  n: [x]
`
	_, err := Parse("p.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`p.yaml:4:5: kafka.tls: a client certificate needs both cert_file and key_file`,
		`p.yaml:5:5: kafka.tls.ca: certificates, keys and secrets are not written in the placement`,
		`p.yaml:6:27: kafka.tls.insecure_skip_verify must be true or false, not "sometimes"`,
		`p.yaml:7:5: unknown key kafka.tls.verify`,
		`p.yaml:9:5: kafka.sasl: missing username`,
		`p.yaml:9:5: kafka.sasl: give password_env or password_file, not both`,
		`p.yaml:9:16: kafka.sasl.mechanism: unknown SASL mechanism "GSSAPI" (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`,
		`p.yaml:10:5: kafka.sasl.password: secrets are never written in the placement`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != len(want) {
		t.Errorf("%d problems, want %d:\n%s", n, len(want), got)
	}
	if strings.Contains(got, "hunter2") {
		t.Errorf("the error repeats the secret:\n%s", got)
	}
	for src, want := range map[string]string{
		"sasl: plain":          `p.yaml:3:9: kafka.sasl must be a mapping`,
		"sasl: {username: u}":  `p.yaml:3:9: kafka.sasl: missing mechanism`,
		"tls: [a]":             `p.yaml:3:8: kafka.tls must be true, false or a mapping`,
		"tls: {ca_file: \"\"}": `p.yaml:3:18: kafka.tls.ca_file must be a non-empty string`,
	} {
		if _, err := Parse("p.yaml", []byte("app: a\nkafka:\n  "+src+"\nnodes:\n  n: [x]\n")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

func TestResolvePassword(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MOLGEN_TEST_PW", "from-env")
	t.Setenv(DefaultPasswordEnv, "from-default-env")
	for _, c := range []struct {
		s    SASL
		want string
	}{
		{SASL{Password: "direct", PasswordFile: file}, "direct"},
		{SASL{PasswordFile: file}, "from-file"},
		{SASL{PasswordEnv: "MOLGEN_TEST_PW"}, "from-env"},
		{SASL{}, "from-default-env"},
	} {
		if got, err := c.s.ResolvePassword(); err != nil || got != c.want {
			t.Errorf("%+v: %q, %v; want %q", c.s, got, err, c.want)
		}
	}
	for _, c := range []struct {
		s    SASL
		want string
	}{
		{SASL{PasswordEnv: "MOLGEN_TEST_UNSET_PW"}, "environment variable MOLGEN_TEST_UNSET_PW is unset or empty"},
		{SASL{PasswordFile: filepath.Join(dir, "missing")}, "reading the SASL password file"},
	} {
		if _, err := c.s.ResolvePassword(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.s, err, c.want)
		}
	}
}

func TestTLSConfigNamesTheBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t    TLS
		want string
	}{
		{TLS{CAFile: bad}, "the TLS CA file " + bad + " holds no PEM certificate"},
		{TLS{CAFile: filepath.Join(dir, "nope.pem")}, "reading the TLS CA file"},
		{TLS{CertFile: bad, KeyFile: bad}, "loading the TLS client certificate " + bad},
		{TLS{CertFile: bad}, "needs both cert_file and key_file"},
	} {
		if _, err := c.t.Config(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.t, err, c.want)
		}
	}
	c, err := (&TLS{ServerName: "k", InsecureSkipVerify: true}).Config()
	if err != nil || c.ServerName != "k" || !c.InsecureSkipVerify || c.RootCAs != nil {
		t.Errorf("config = %+v, %v", c, err)
	}
}
