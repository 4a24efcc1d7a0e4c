package placement

import (
	"flag"
	"fmt"
	"os"
	"strconv"
)

// SecurityFlags are the flags for TLS and SASL to Kafka. Each has
// an environment variable; a flag wins over its variable, and both win
// over the placement's kafka.tls and kafka.sasl. The SASL password itself
// has no flag (command lines are visible to every user of the host): it
// comes from MOLGEN_KAFKA_SASL_PASSWORD, -kafka-sasl-password-file, or
// what the placement names.
type SecurityFlags struct {
	tls                                   *string // "", "true" or "false"
	caFile, certFile, keyFile, serverName *string
	insecure                              *string
	mechanism, username, passwordFile     *string
}

// AddSecurityFlags defines the TLS and SASL flags on fs, with their
// environment variables as defaults. Node binaries and 'molgen topics'
// take the same flags.
func AddSecurityFlags(fs *flag.FlagSet) *SecurityFlags {
	env := os.Getenv
	return &SecurityFlags{
		tls:          fs.String("kafka-tls", env("MOLGEN_KAFKA_TLS"), "`true` or false: connect to Kafka with TLS (env MOLGEN_KAFKA_TLS; default: the placement's kafka.tls; also on when a TLS file or name is given)"),
		caFile:       fs.String("kafka-ca-file", env("MOLGEN_KAFKA_CA_FILE"), "PEM `file` of the CAs that sign the brokers' certificates (env MOLGEN_KAFKA_CA_FILE; default: kafka.tls.ca_file, else the system's roots)"),
		certFile:     fs.String("kafka-cert-file", env("MOLGEN_KAFKA_CERT_FILE"), "PEM client certificate `file` for mutual TLS (env MOLGEN_KAFKA_CERT_FILE)"),
		keyFile:      fs.String("kafka-key-file", env("MOLGEN_KAFKA_KEY_FILE"), "PEM client key `file` for mutual TLS (env MOLGEN_KAFKA_KEY_FILE)"),
		serverName:   fs.String("kafka-server-name", env("MOLGEN_KAFKA_SERVER_NAME"), "`name` the brokers' certificates must carry (env MOLGEN_KAFKA_SERVER_NAME; default: each broker's host)"),
		insecure:     fs.String("kafka-insecure-skip-verify", env("MOLGEN_KAFKA_INSECURE_SKIP_VERIFY"), "`true`: accept any broker certificate, for tests only (env MOLGEN_KAFKA_INSECURE_SKIP_VERIFY)"),
		mechanism:    fs.String("kafka-sasl-mechanism", env("MOLGEN_KAFKA_SASL_MECHANISM"), "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env MOLGEN_KAFKA_SASL_MECHANISM; default: kafka.sasl.mechanism)"),
		username:     fs.String("kafka-sasl-username", env("MOLGEN_KAFKA_SASL_USERNAME"), "SASL `user` (env MOLGEN_KAFKA_SASL_USERNAME; default: kafka.sasl.username)"),
		passwordFile: fs.String("kafka-sasl-password-file", env("MOLGEN_KAFKA_SASL_PASSWORD_FILE"), "`file` holding the SASL password (env MOLGEN_KAFKA_SASL_PASSWORD_FILE; the password itself may be in env MOLGEN_KAFKA_SASL_PASSWORD)"),
	}
}

// Apply merges the flags over a placement's kafka.tls and kafka.sasl
// (either may be nil; they are not changed) and returns the result: nil
// TLS means plaintext, nil SASL no authentication.
func (f *SecurityFlags) Apply(placedTLS *TLS, placedSASL *SASL) (*TLS, *SASL, error) {
	var t *TLS
	var s *SASL
	if placedTLS != nil {
		c := *placedTLS
		t = &c
	}
	if placedSASL != nil {
		c := *placedSASL
		s = &c
	}
	if *f.tls != "" {
		on, err := strconv.ParseBool(*f.tls)
		if err != nil {
			return nil, nil, fmt.Errorf("-kafka-tls (MOLGEN_KAFKA_TLS) must be true or false, not %q", *f.tls)
		}
		switch {
		case !on:
			t = nil
		case t == nil:
			t = &TLS{}
		}
	}
	tlsOff := *f.tls != "" && t == nil
	for _, o := range []struct {
		v   string
		set func(*TLS)
	}{
		{*f.caFile, func(t *TLS) { t.CAFile = *f.caFile }},
		{*f.certFile, func(t *TLS) { t.CertFile = *f.certFile }},
		{*f.keyFile, func(t *TLS) { t.KeyFile = *f.keyFile }},
		{*f.serverName, func(t *TLS) { t.ServerName = *f.serverName }},
	} {
		if o.v == "" || tlsOff {
			continue
		}
		if t == nil {
			t = &TLS{}
		}
		o.set(t)
	}
	if *f.insecure != "" && !tlsOff {
		on, err := strconv.ParseBool(*f.insecure)
		if err != nil {
			return nil, nil, fmt.Errorf("-kafka-insecure-skip-verify (MOLGEN_KAFKA_INSECURE_SKIP_VERIFY) must be true or false, not %q", *f.insecure)
		}
		if on && t == nil {
			t = &TLS{}
		}
		if t != nil {
			t.InsecureSkipVerify = on
		}
	}
	if t != nil {
		if err := CheckTLS(t); err != nil {
			return nil, nil, fmt.Errorf("Kafka TLS: %v", err)
		}
	}
	if *f.mechanism != "" || *f.username != "" || *f.passwordFile != "" {
		if s == nil {
			s = &SASL{}
		}
		if *f.mechanism != "" {
			s.Mechanism = *f.mechanism
		}
		if *f.username != "" {
			s.Username = *f.username
		}
		if *f.passwordFile != "" {
			s.PasswordFile, s.PasswordEnv = *f.passwordFile, ""
		}
	}
	if s != nil {
		// The node's own variable wins over the one the placement names.
		if pw := os.Getenv(DefaultPasswordEnv); pw != "" && *f.passwordFile == "" {
			s.Password = pw
		}
		if err := CheckSASL(s); err != nil {
			return nil, nil, fmt.Errorf("Kafka SASL: %v", err)
		}
	}
	return t, s, nil
}
