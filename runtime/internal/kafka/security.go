package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ConnectError is a failure to connect to Kafka: which brokers, what the
// cause is in plain words, and the error underneath (errors.Is and As
// reach it).
type ConnectError struct {
	Brokers  string
	Security string // as configured, e.g. "TLS, SASL SCRAM-SHA-512 as \"app\""
	Cause    string // in plain words; may be empty
	Waited   string // how long the node waited, when it retried
	Err      error
}

func (e *ConnectError) Error() string {
	var b strings.Builder
	b.WriteString("molgen: cannot reach Kafka at ")
	b.WriteString(e.Brokers)
	b.WriteString(" (")
	b.WriteString(e.Security)
	if e.Waited != "" {
		b.WriteString("; waited ")
		b.WriteString(e.Waited)
	}
	b.WriteString(")")
	if e.Cause != "" {
		b.WriteString(": ")
		b.WriteString(e.Cause)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ConnectError) Unwrap() error { return e.Err }

// explain turns a failure to talk to a broker into plain words, and says
// whether waiting longer could help: a wrong password or an untrusted
// certificate stays wrong, so the node fails at once rather than at the
// end of its connect timeout.
func explain(err error, sec Security) (cause string, permanent bool) {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		alert     tls.AlertError
	)
	mech := ""
	if sec.SASL != nil {
		mech = sec.SASL.Mechanism
	}
	var firstRead *kgo.ErrFirstReadEOF
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return "SASL authentication failed: the broker refused user " + quote(sec.SASL) + " with mechanism " + mech +
			" (a wrong password, an unknown user, or a user without credentials for " + mech + ")", true
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "the broker's listener does not accept SASL mechanism " + mech + " (check kafka.sasl.mechanism against the listener's sasl.enabled.mechanisms)", true
	case errors.Is(err, kerr.IllegalSaslState):
		return "the broker did not expect a SASL handshake: this listener has no SASL (remove kafka.sasl, or use the SASL port)", true
	case errors.As(err, &firstRead) && sec.TLS != nil && strings.Contains(err.Error(), "using TLS when the broker is not expecting it"):
		return "TLS: the broker did not answer with TLS: this looks like a plaintext listener (remove kafka.tls, or use the TLS port)", true
	case sec.TLS == nil && (errors.As(err, &firstRead) && strings.Contains(err.Error(), "requires TLS") || strings.Contains(err.Error(), "plaintext connection speaking to a tls endpoint")):
		return "the broker expects TLS and this node sent plaintext: set kafka.tls (this is a TLS listener)", true
	case errors.As(err, &firstRead) && sec.SASL == nil && strings.Contains(err.Error(), "SASL is required"):
		return "the broker closed the connection when this node sent a request without SASL: this listener requires SASL (set kafka.sasl)", true
	case errors.As(err, &firstRead):
		return "the broker closed the connection at once: " + firstRead.Error(), false
	case errors.As(err, &unknownCA):
		return "TLS: the broker's certificate is signed by an authority this node does not trust (" + unknownCA.Error() + "); set kafka.tls.ca_file to the CA that signed it", true
	case errors.As(err, &hostname):
		return "TLS: the broker's certificate is not valid for the name this node dialled (" + hostname.Error() + "); connect by a name the certificate lists or set kafka.tls.server_name", true
	case errors.As(err, &invalid):
		return "TLS: the broker's certificate is not valid (" + invalid.Error() + ")", true
	case errors.As(err, &verify):
		return "TLS: the broker's certificate could not be verified (" + verify.Err.Error() + ")", true
	case errors.As(err, &record):
		return "TLS: the broker did not answer with TLS: this looks like a plaintext listener (remove kafka.tls, or use the TLS port)", true
	case errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls: "):
		// A TLS alert from the broker: over TCP, crypto/tls reports it as
		// a *net.OpError "remote error" around an unexported alert type.
		msg := err.Error()
		if i := strings.Index(msg, "tls: "); i >= 0 {
			msg = msg[i:]
		}
		switch {
		case strings.Contains(msg, "certificate required"),
			strings.Contains(msg, "bad certificate") && (sec.TLS == nil || len(sec.TLS.Certificates) == 0):
			return "TLS: the broker requires a client certificate (set kafka.tls.cert_file and key_file)", true
		case strings.Contains(msg, "certificate"), strings.Contains(msg, "unknown certificate authority"):
			return "TLS: the broker refused this node's client certificate (" + msg + "): it must be signed by a CA the broker trusts", true
		}
		return "TLS: the broker ended the handshake (" + msg + ")", true
	case sec.TLS != nil && strings.Contains(err.Error(), "tls:"):
		return "TLS handshake failed", false
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed):
		switch {
		case sec.TLS == nil:
			return "the broker closed the connection without answering: if this is a TLS (SSL or SASL_SSL) listener, set kafka.tls; if it requires SASL, set kafka.sasl", false
		case sec.SASL == nil:
			return "the broker closed the connection after the TLS handshake: if this listener requires SASL (SASL_SSL), set kafka.sasl; if it requires a client certificate, set kafka.tls.cert_file and key_file", false
		}
		return "the broker closed the connection: a broker that does so at once refused the SASL credentials (user, password or mechanism " + mech + "), or the listener expects no SASL", false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens at that address (is the broker running, and is it the right port?)", false
	}
	return "", false
}

func quote(s *SASL) string {
	if s == nil {
		return `""`
	}
	return `"` + s.Username + `"`
}
