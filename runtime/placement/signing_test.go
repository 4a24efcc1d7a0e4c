package placement

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlacementSigning(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`app: a
security:
  signing:
    key_env: APP_KEY
    services:
      pay: {key_file: /run/secrets/pay}
      calc: {key_env: CALC_KEY}
nodes:
  n: [pay, calc]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Security.Signing
	if s == nil || s.App == nil || s.App.Env != "APP_KEY" || s.App.File != "" {
		t.Fatalf("signing = %+v", s)
	}
	if got := strings.Join(s.ServiceNames(), ","); got != "calc,pay" {
		t.Errorf("services %s", got)
	}
	if k := s.Services["pay"]; k.File != "/run/secrets/pay" || k.Env != "" {
		t.Errorf("pay: %+v", k)
	}
	if pos := s.ServicePos["calc"]; pos != (Position{7, 7}) {
		t.Errorf("calc at %+v", pos)
	}
	if err := p.Validate([]string{"pay", "calc"}, nil); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Only per-service keys.
	p, err = Parse("p.yaml", []byte("app: a\nsecurity:\n  signing:\n    services:\n      pay: {key_env: K}\nnodes:\n  n: [pay]\n"))
	if err != nil || p.Security.Signing.App != nil || len(p.Security.Signing.Services) != 1 {
		t.Errorf("service keys only: %v %+v", err, p.Security.Signing)
	}
}

// TestPlacementSigningErrors: every problem of the signing section is
// reported at its line and column, keys written in the file are refused,
// and a service name that the app does not have is caught by Validate.
func TestPlacementSigningErrors(t *testing.T) {
	_, err := Parse("p.yaml", []byte(`app: a
security:
  signing:
    key: c2VjcmV0
    key_env: A
    key_file: /x
    services:
      pay: {keys: abc}
      "Bad Name": {key_env: B}
      calc: x
  tls: true
nodes:
  n: [pay]
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"p.yaml:4:5: security.signing.key: keys are never written in the placement",
		"p.yaml:4:5: security.signing: give key_env or key_file, not both",
		"p.yaml:8:13: security.signing.services.pay.keys: keys are never written",
		"p.yaml:8:12: security.signing.services.pay: give key_env or key_file",
		`p.yaml:9:7: security.signing.services: "Bad Name" is not a service name`,
		"p.yaml:10:13: security.signing.services.calc must be {key_env: VAR} or {key_file: PATH}",
		"p.yaml:11:3: unknown key security.tls (want signing)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	for src, want := range map[string]string{
		"security: []":               "security must be a mapping",
		"security:\n  signing: true": "security.signing must be a mapping",
		"security:\n  signing: {}":   "security.signing: give the app's key",
	} {
		if _, err := Parse("p.yaml", []byte("app: a\n"+src+"\nnodes:\n  n: [x]\n")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
	p, err := Parse("p.yaml", []byte("app: a\nsecurity:\n  signing:\n    services:\n      pya: {key_env: K}\nnodes:\n  n: [pay]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate([]string{"pay"}, nil); err == nil || !strings.Contains(err.Error(), `p.yaml:5:7: security.signing.services: unknown service "pya" (did you mean "pay"?)`) {
		t.Errorf("Validate: %v", err)
	}
}

func TestKeySourceResolve(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{0xfb}, 32), bytes.Repeat([]byte{0x01}, 33)
	text := base64.StdEncoding.EncodeToString(k1) + "\n\n  " + base64.RawURLEncoding.EncodeToString(k2) + "  \n"
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MOLGEN_TEST_KEY", text)
	t.Setenv(DefaultSigningKeyEnv, base64.StdEncoding.EncodeToString(k2))
	for _, src := range []*KeySource{{File: file}, {Env: "MOLGEN_TEST_KEY"}} {
		keys, err := src.Resolve()
		if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], k1) || !bytes.Equal(keys[1], k2) {
			t.Errorf("%s: %v, %x", src, err, keys)
		}
	}
	if keys, err := (&KeySource{}).Resolve(); err != nil || len(keys) != 1 || !bytes.Equal(keys[0], k2) {
		t.Errorf("the default variable: %v %x", err, keys)
	}
	if keys, _ := (&KeySource{Keys: [][]byte{k1}, Env: "MOLGEN_TEST_KEY"}).Resolve(); len(keys) != 1 {
		t.Errorf("keys given directly do not win: %x", keys)
	}
	for src, want := range map[*KeySource]string{
		{Env: "MOLGEN_TEST_UNSET"}:              "environment variable MOLGEN_TEST_UNSET is unset or empty",
		{File: filepath.Join(t.TempDir(), "x")}: "reading the signing key file",
	} {
		if _, err := src.Resolve(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	if _, err := ParseKeys("abc\n!!!\n", "file k"); err == nil || !strings.Contains(err.Error(), "file k, line 2: a signing key is base64") {
		t.Errorf("a bad line: %v", err)
	}
	if _, err := ParseKeys("\n \n", "file k"); err == nil || !strings.Contains(err.Error(), "holds no signing key") {
		t.Errorf("no keys: %v", err)
	}
}
