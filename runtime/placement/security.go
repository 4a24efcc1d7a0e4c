package placement

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// TLS is the kafka.tls section of a placement: how nodes verify the
// brokers and, for mutual TLS, prove who they are.
//
//	kafka:
//	  tls:
//	    ca_file: /etc/molgen/kafka-ca.pem   # default: the system's roots
//	    cert_file: /etc/molgen/client.pem   # client certificate (mTLS)
//	    key_file: /etc/molgen/client-key.pem
//	    server_name: kafka.example.com      # default: the broker's host
//
// "tls: true" turns TLS on with the system's roots and no client
// certificate.
type TLS struct {
	// CAFile is a PEM file of the CAs that sign the brokers' certificates;
	// empty means the system's root CAs.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key, for
	// brokers that require client certificates (mTLS). Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry; empty
	// means the host of each broker address.
	ServerName string
	// InsecureSkipVerify accepts any certificate a broker shows: testing
	// only (the node logs a warning at start).
	InsecureSkipVerify bool
}

// SASL is the kafka.sasl section of a placement. Secrets are never in the
// placement: the password comes from the environment variable PasswordEnv
// names or the file PasswordFile names (node binaries also read
// MOLGEN_KAFKA_SASL_PASSWORD and -kafka-sasl-password-file).
//
//	kafka:
//	  sasl:
//	    mechanism: SCRAM-SHA-512       # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
//	    username: orders-service
//	    password_env: KAFKA_PASSWORD   # or password_file: /run/secrets/kafka
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	Username  string
	// PasswordEnv names the environment variable that holds the password;
	// PasswordFile names a file whose content (without a trailing newline)
	// is the password. At most one of them.
	PasswordEnv, PasswordFile string
	// Password is the password itself, for library users who hold it
	// already (runtime.Options). It is never read from a placement file;
	// when set it wins over PasswordEnv and PasswordFile.
	Password string
}

// Mechanisms are the SASL mechanisms molgen speaks.
var Mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// NormalizeMechanism returns the canonical spelling of a SASL mechanism
// name (any case, "_" for "-"), or false when molgen does not speak it.
func NormalizeMechanism(m string) (string, bool) {
	up := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(m), "_", "-"))
	for _, k := range Mechanisms {
		if up == k {
			return k, true
		}
	}
	return m, false
}

// CheckSASL reports what is wrong with s, in words, or nil.
func CheckSASL(s *SASL) error {
	var errs []error
	if _, ok := NormalizeMechanism(s.Mechanism); !ok {
		errs = append(errs, unknownMechanism(s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("the SASL username is empty"))
	}
	if s.PasswordEnv != "" && s.PasswordFile != "" {
		errs = append(errs, errors.New("give the SASL password by password_env or password_file, not both"))
	}
	return errors.Join(errs...)
}

func unknownMechanism(m string) error {
	if m == "" {
		return fmt.Errorf("no SASL mechanism (want %s)", strings.Join(Mechanisms, ", "))
	}
	return fmt.Errorf("unknown SASL mechanism %q (want %s)", m, strings.Join(Mechanisms, ", "))
}

// CheckTLS reports what is wrong with t, in words, or nil.
func CheckTLS(t *TLS) error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("a client certificate needs both cert_file and key_file")
	}
	return nil
}

// DefaultPasswordEnv is the environment variable a node reads the SASL
// password from when the placement names neither password_env nor
// password_file.
const DefaultPasswordEnv = "MOLGEN_KAFKA_SASL_PASSWORD"

// ResolvePassword returns the SASL password: Password if set, else the
// content of PasswordFile, else the value of PasswordEnv (default
// MOLGEN_KAFKA_SASL_PASSWORD). An empty password is an error that says
// where it was looked for.
func (s *SASL) ResolvePassword() (string, error) {
	switch {
	case s.Password != "":
		return s.Password, nil
	case s.PasswordFile != "":
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("reading the SASL password file: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", fmt.Errorf("the SASL password file %s is empty", s.PasswordFile)
		}
		return pw, nil
	default:
		env := s.PasswordEnv
		if env == "" {
			env = DefaultPasswordEnv
		}
		pw := os.Getenv(env)
		if pw == "" {
			return "", fmt.Errorf("no SASL password: environment variable %s is unset or empty (or name a file with kafka.sasl.password_file)", env)
		}
		return pw, nil
	}
}

// Config builds the tls.Config t describes: it reads the CA file and the
// client certificate and key, and says which file is wrong when one is.
func (t *TLS) Config() (*tls.Config, error) {
	if err := CheckTLS(t); err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the TLS CA file %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the TLS client certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func parseTLS(v *yaml.Node, p *Placement, perr *Error) {
	if v.Kind == yaml.ScalarNode {
		on, err := strconv.ParseBool(v.Value)
		if err != nil {
			perr.add(v.Line, v.Column, "kafka.tls must be true, false or a mapping with ca_file, cert_file, key_file, server_name, insecure_skip_verify; not %q", v.Value)
			return
		}
		if on {
			p.Kafka.TLS = &TLS{}
		}
		return
	}
	if v.Kind != yaml.MappingNode {
		perr.add(v.Line, v.Column, "kafka.tls must be true, false or a mapping with ca_file, cert_file, key_file, server_name, insecure_skip_verify")
		return
	}
	t := &TLS{}
	enabled := true
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "ca_file", "cert_file", "key_file", "server_name":
			if val.Kind != yaml.ScalarNode || val.Value == "" {
				perr.add(val.Line, val.Column, "kafka.tls.%s must be a non-empty string", k.Value)
				continue
			}
			switch k.Value {
			case "ca_file":
				t.CAFile = val.Value
			case "cert_file":
				t.CertFile = val.Value
			case "key_file":
				t.KeyFile = val.Value
			case "server_name":
				t.ServerName = val.Value
			}
		case "insecure_skip_verify", "enabled":
			b, err := strconv.ParseBool(val.Value)
			if val.Kind != yaml.ScalarNode || err != nil {
				perr.add(val.Line, val.Column, "kafka.tls.%s must be true or false, not %q", k.Value, val.Value)
				continue
			}
			if k.Value == "enabled" {
				enabled = b
			} else {
				t.InsecureSkipVerify = b
			}
		case "key", "cert", "ca", "key_password", "password":
			perr.add(k.Line, k.Column, "kafka.tls.%s: certificates, keys and secrets are not written in the placement; name files with ca_file, cert_file and key_file", k.Value)
		default:
			perr.add(k.Line, k.Column, "unknown key kafka.tls.%s (want ca_file, cert_file, key_file, server_name, insecure_skip_verify or enabled)", k.Value)
		}
	}
	if err := CheckTLS(t); err != nil {
		perr.add(v.Line, v.Column, "kafka.tls: %v", err)
	}
	if enabled {
		p.Kafka.TLS = t
	}
}

func parseSASL(v *yaml.Node, p *Placement, perr *Error) {
	if v.Kind != yaml.MappingNode {
		perr.add(v.Line, v.Column, "kafka.sasl must be a mapping with mechanism, username and password_env or password_file")
		return
	}
	s := &SASL{}
	var mechAt *yaml.Node
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "mechanism", "username", "password_env", "password_file":
			if val.Kind != yaml.ScalarNode || val.Value == "" {
				perr.add(val.Line, val.Column, "kafka.sasl.%s must be a non-empty string", k.Value)
				continue
			}
			switch k.Value {
			case "mechanism":
				m, ok := NormalizeMechanism(val.Value)
				if !ok {
					perr.add(val.Line, val.Column, "kafka.sasl.mechanism: %v", unknownMechanism(val.Value))
					m = ""
				}
				s.Mechanism, mechAt = m, val
			case "username":
				s.Username = val.Value
			case "password_env":
				s.PasswordEnv = val.Value
			case "password_file":
				s.PasswordFile = val.Value
			}
		case "password", "pass", "secret":
			perr.add(k.Line, k.Column, "kafka.sasl.%s: secrets are never written in the placement; name an environment variable (password_env) or a file (password_file) that holds it", k.Value)
		default:
			perr.add(k.Line, k.Column, "unknown key kafka.sasl.%s (want mechanism, username, password_env or password_file)", k.Value)
		}
	}
	if mechAt == nil {
		perr.add(v.Line, v.Column, "kafka.sasl: missing mechanism (want %s)", strings.Join(Mechanisms, ", "))
	}
	if s.Username == "" {
		perr.add(v.Line, v.Column, "kafka.sasl: missing username")
	}
	if s.PasswordEnv != "" && s.PasswordFile != "" {
		perr.add(v.Line, v.Column, "kafka.sasl: give password_env or password_file, not both")
	}
	p.Kafka.SASL = s
}
