package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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
	case errors.Is(err, errPlaintextListener):
		return "TLS: the broker did not answer with TLS: this looks like a plaintext listener (remove " + sec.name("kafka.tls") + ", or use the TLS port)", true
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return "SASL authentication failed: the broker refused user " + quote(sec.SASL) + " with mechanism " + mech +
			" (a wrong password, an unknown user, or a user without credentials for " + mech + ")", true
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "the broker's listener does not accept SASL mechanism " + mech + " (check " + sec.name("kafka.sasl.mechanism") + " against the listener's sasl.enabled.mechanisms)", true
	case errors.Is(err, kerr.IllegalSaslState):
		return "the broker did not expect a SASL handshake: this listener has no SASL (remove " + sec.name("kafka.sasl") + ", or use the SASL port)", true
	case errors.As(err, &firstRead) && sec.TLS != nil && strings.Contains(err.Error(), "using TLS when the broker is not expecting it"):
		return "TLS: the broker did not answer with TLS: this looks like a plaintext listener (remove " + sec.name("kafka.tls") + ", or use the TLS port)", true
	case sec.TLS == nil && (errors.As(err, &firstRead) && strings.Contains(err.Error(), "requires TLS") || strings.Contains(err.Error(), "plaintext connection speaking to a tls endpoint")):
		return "the broker expects TLS and this node sent plaintext: set " + sec.name("kafka.tls") + " (this is a TLS listener)", true
	case errors.As(err, &firstRead) && sec.SASL == nil && strings.Contains(err.Error(), "SASL is required"):
		return "the broker closed the connection when this node sent a request without SASL: this listener requires SASL (set " + sec.name("kafka.sasl") + ")", true
	case errors.As(err, &firstRead):
		return "the broker closed the connection at once: " + firstRead.Error(), false
	case errors.As(err, &unknownCA):
		return "TLS: the broker's certificate is signed by an authority this node does not trust (" + unknownCA.Error() + "); set " + sec.name("kafka.tls.ca_file") + " to the CA that signed it", true
	case errors.As(err, &hostname):
		return "TLS: the broker's certificate is not valid for the name this node dialled (" + hostname.Error() + "); connect by a name the certificate lists or set " + sec.name("kafka.tls.server_name"), true
	case errors.As(err, &invalid):
		return "TLS: the broker's certificate is not valid (" + invalid.Error() + ")", true
	case errors.As(err, &verify):
		return "TLS: the broker's certificate could not be verified (" + verify.Err.Error() + ")", true
	case errors.As(err, &record):
		return "TLS: the broker did not answer with TLS: this looks like a plaintext listener (remove " + sec.name("kafka.tls") + ", or use the TLS port)", true
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
			return "TLS: the broker requires a client certificate (set " + sec.name("kafka.tls.cert_file") + " and " + sec.name("kafka.tls.key_file") + ")", true
		case strings.Contains(msg, "certificate"), strings.Contains(msg, "unknown certificate authority"):
			return "TLS: the broker refused this node's client certificate (" + msg + "): it must be signed by a CA the broker trusts", true
		}
		return "TLS: the broker ended the handshake (" + msg + ")", true
	case sec.TLS != nil && strings.Contains(err.Error(), "tls:"):
		return "TLS handshake failed", false
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed):
		switch {
		case sec.TLS == nil:
			return "the broker closed the connection without answering: if this is a TLS (SSL or SASL_SSL) listener, set " + sec.name("kafka.tls") + "; if it requires SASL, set " + sec.name("kafka.sasl"), false
		case sec.SASL == nil:
			return "the broker closed the connection after the TLS handshake: if this listener requires SASL (SASL_SSL), set " + sec.name("kafka.sasl") + "; if it requires a client certificate, set " + sec.name("kafka.tls.cert_file") + " and " + sec.name("kafka.tls.key_file"), false
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

// errPlaintextListener is the cause of a TLS dial to a port where Kafka
// answers in plaintext.
var errPlaintextListener = errors.New("the port answered a plaintext Kafka request and no TLS handshake")

// plaintextProbeAfter is how long a TLS handshake goes unanswered before
// the dialer asks the port in plaintext what it is.
const plaintextProbeAfter = 500 * time.Millisecond

// tlsDialer dials with TLS as kgo.DialTLSConfig does (the broker's host is
// the server name unless cfg names one; timeout bounds the dial and the
// handshake), and finds out at once when the port is a plaintext listener.
// A TLS client there otherwise learns nothing useful: Kafka reads the
// ClientHello as the length of a huge request and closes the connection,
// which reads like a refused SASL login, and a broker that waits for the
// rest of that request leaves the handshake hanging until the timeout. So
// when the handshake ends without a TLS answer, or has none after
// plaintextProbeAfter, the dialer sends an ApiVersions request in
// plaintext on a second connection: a Kafka answer means the port speaks
// plaintext (errPlaintextListener).
func tlsDialer(cfg *tls.Config, timeout time.Duration) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		raw, err := (&net.Dialer{}).DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		if c.ServerName == "" {
			server, _, err := net.SplitHostPort(host)
			if err != nil {
				raw.Close()
				return nil, fmt.Errorf("unable to split host:port for dialing: %w", err)
			}
			c.ServerName = server
		}
		conn := tls.Client(raw, c)
		shake, stop := context.WithCancel(ctx)
		defer stop()
		done := make(chan error, 1)
		go func() { done <- conn.HandshakeContext(shake) }()
		probe := time.NewTimer(plaintextProbeAfter)
		defer probe.Stop()
		select {
		case err = <-done:
		case <-probe.C:
			if plaintextKafka(ctx, network, host) {
				stop()
				<-done
				raw.Close()
				return nil, errPlaintextListener
			}
			err = <-done
		}
		if err != nil {
			raw.Close()
			if noTLSAnswer(err) && plaintextKafka(ctx, network, host) {
				return nil, errPlaintextListener
			}
			return nil, err
		}
		return conn, nil
	}
}

// noTLSAnswer reports whether a handshake error means the peer never
// answered in TLS (it closed, reset, hung, or sent something else), as
// opposed to a TLS answer the client refused (a certificate, an alert).
func noTLSAnswer(err error) bool {
	var record tls.RecordHeaderError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &record)
}

// plaintextKafka reports whether host answers an ApiVersions request sent
// in plaintext with a Kafka response, within a second.
func plaintextKafka(ctx context.Context, network, host string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err != nil {
		return false
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	const correlation = 0x6d6f6c67 // "molg"
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	msg := kmsg.NewRequestFormatter(kmsg.FormatterClientID("molgen-probe")).AppendRequest(nil, req, correlation)
	if _, err := conn.Write(msg); err != nil {
		return false
	}
	var head [8]byte // length, correlation id
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return false
	}
	size := binary.BigEndian.Uint32(head[:4])
	if size < 6 || size > 1<<20 || binary.BigEndian.Uint32(head[4:]) != correlation {
		return false
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(conn, body); err != nil {
		return false
	}
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.Version = 0
	return resp.ReadFrom(body) == nil && len(resp.ApiKeys) > 0
}
