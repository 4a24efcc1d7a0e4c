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
	fs                                    *flag.FlagSet
	envOf                                 map[string]string // flag name → its environment variable
	tls                                   *string           // "", "true" or "false"
	caFile, certFile, keyFile, serverName *string
	insecure                              *string
	mechanism, username, passwordFile     *string
}

// AddSecurityFlags defines the TLS and SASL flags on fs, with their
// environment variables as defaults. Node binaries and 'molgen topics'
// take the same flags.
func AddSecurityFlags(fs *flag.FlagSet) *SecurityFlags {
	envOf := map[string]string{}
	str := func(name, env, usage string) *string {
		envOf[name] = env
		return fs.String(name, os.Getenv(env), usage)
	}
	return &SecurityFlags{
		fs:           fs,
		envOf:        envOf,
		tls:          str("kafka-tls", "MOLGEN_KAFKA_TLS", "`true` or false: connect to Kafka with TLS (env MOLGEN_KAFKA_TLS; default: the placement's kafka.tls; also on when a TLS file or name is given)"),
		caFile:       str("kafka-ca-file", "MOLGEN_KAFKA_CA_FILE", "PEM `file` of the CAs that sign the brokers' certificates (env MOLGEN_KAFKA_CA_FILE; default: kafka.tls.ca_file, else the system's roots)"),
		certFile:     str("kafka-cert-file", "MOLGEN_KAFKA_CERT_FILE", "PEM client certificate `file` for mutual TLS (env MOLGEN_KAFKA_CERT_FILE)"),
		keyFile:      str("kafka-key-file", "MOLGEN_KAFKA_KEY_FILE", "PEM client key `file` for mutual TLS (env MOLGEN_KAFKA_KEY_FILE)"),
		serverName:   str("kafka-server-name", "MOLGEN_KAFKA_SERVER_NAME", "`name` the brokers' certificates must carry (env MOLGEN_KAFKA_SERVER_NAME; default: each broker's host)"),
		insecure:     str("kafka-insecure-skip-verify", "MOLGEN_KAFKA_INSECURE_SKIP_VERIFY", "`true`: accept any broker certificate, for tests only (env MOLGEN_KAFKA_INSECURE_SKIP_VERIFY)"),
		mechanism:    str("kafka-sasl-mechanism", "MOLGEN_KAFKA_SASL_MECHANISM", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env MOLGEN_KAFKA_SASL_MECHANISM; default: kafka.sasl.mechanism)"),
		username:     str("kafka-sasl-username", "MOLGEN_KAFKA_SASL_USERNAME", "SASL `user` (env MOLGEN_KAFKA_SASL_USERNAME; default: kafka.sasl.username)"),
		passwordFile: str("kafka-sasl-password-file", "MOLGEN_KAFKA_SASL_PASSWORD_FILE", "`file` holding the SASL password (env MOLGEN_KAFKA_SASL_PASSWORD_FILE; the password itself may be in env MOLGEN_KAFKA_SASL_PASSWORD)"),
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

// securitySettings names each security setting three ways: its placement
// key, its flag and its environment variable.
var securitySettings = []struct{ key, flag, env string }{
	{"kafka.tls", "-kafka-tls", "MOLGEN_KAFKA_TLS"},
	{"kafka.tls.ca_file", "-kafka-ca-file", "MOLGEN_KAFKA_CA_FILE"},
	{"kafka.tls.cert_file", "-kafka-cert-file", "MOLGEN_KAFKA_CERT_FILE"},
	{"kafka.tls.key_file", "-kafka-key-file", "MOLGEN_KAFKA_KEY_FILE"},
	{"kafka.tls.server_name", "-kafka-server-name", "MOLGEN_KAFKA_SERVER_NAME"},
	{"kafka.sasl", "-kafka-sasl-mechanism, -kafka-sasl-username and -kafka-sasl-password-file",
		"MOLGEN_KAFKA_SASL_MECHANISM, MOLGEN_KAFKA_SASL_USERNAME and MOLGEN_KAFKA_SASL_PASSWORD"},
	{"kafka.sasl.mechanism", "-kafka-sasl-mechanism", "MOLGEN_KAFKA_SASL_MECHANISM"},
}

// Names says, for each security setting's placement key, how the node's
// hints should name it: the way it was given (its flag, when set on the
// command line; its environment variable, when that set it), and for a
// setting not given, the way the others were (flags, else environment
// variables, else placement keys).
func (f *SecurityFlags) Names() map[string]string {
	if f.fs == nil {
		return nil
	}
	set := map[string]bool{}
	anyFlag := false
	f.fs.Visit(func(fl *flag.Flag) {
		set["-"+fl.Name] = true
		_, security := f.envOf[fl.Name]
		anyFlag = anyFlag || security
	})
	anyEnv := os.Getenv("MOLGEN_KAFKA_SASL_PASSWORD") != "" // the one variable without a flag
	for _, env := range f.envOf {
		anyEnv = anyEnv || os.Getenv(env) != ""
	}
	names := map[string]string{}
	for _, s := range securitySettings {
		// A setting of several flags (kafka.sasl) is never "the one given":
		// its names match no flag and no variable.
		switch {
		case set[s.flag]:
			names[s.key] = s.flag
		case os.Getenv(s.env) != "":
			names[s.key] = s.env
		case anyFlag:
			names[s.key] = s.flag
		case anyEnv:
			names[s.key] = s.env
		}
	}
	return names
}
