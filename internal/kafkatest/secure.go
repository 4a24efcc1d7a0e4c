package kafkatest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/molgen/molgen/internal/broker"
)

// SecureBroker is a broker with secured listeners: SASL over TLS and TLS
// with client certificates required (mTLS), and what a client needs.
type SecureBroker struct {
	// Real is true for the real Apache Kafka named by MOLGEN_TEST_SECURE
	// (scripts/kafka/kafka.sh start -secure), false for embedded kfake
	// brokers.
	Real bool
	// SASLSSL is the address of the SASL_SSL listener: PLAIN,
	// SCRAM-SHA-256 and SCRAM-SHA-512 over TLS.
	SASLSSL string
	// MTLS is the address of the SSL listener that requires a client
	// certificate signed by CAFile.
	MTLS string
	// Plaintext is a plaintext listener: of the same broker for real
	// Kafka, of a third embedded broker for kfake.
	Plaintext string
	// CAFile signs the brokers' certificates (for 127.0.0.1 and localhost)
	// and ClientCert; ClientCert and ClientKey are PEM files.
	CAFile, ClientCert, ClientKey string
	// Username has PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 credentials;
	// Username512 only SCRAM-SHA-512. Both have the password in
	// PasswordFile.
	Username, Username512, PasswordFile string
}

// Password returns the content of PasswordFile.
func (s *SecureBroker) Password(t testing.TB) string {
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Secure returns the secured test broker: the real one whose client
// settings MOLGEN_TEST_SECURE names (the env file kafka.sh start -secure
// writes), or else two kfake brokers started for this test, one with SASL
// over TLS and one with mTLS, with certificates made here. Tests never skip
// for want of one.
func Secure(t testing.TB) *SecureBroker {
	t.Helper()
	if file := os.Getenv("MOLGEN_TEST_SECURE"); file != "" {
		env, err := readEnv(file)
		if err != nil {
			t.Fatalf("MOLGEN_TEST_SECURE: %v", err)
		}
		s := &SecureBroker{Real: true, SASLSSL: env["SASL_SSL"], MTLS: env["MTLS"], Plaintext: env["PLAINTEXT"],
			CAFile: env["CA_FILE"], ClientCert: env["CLIENT_CERT_FILE"], ClientKey: env["CLIENT_KEY_FILE"],
			Username: env["USERNAME"], Username512: env["SCRAM_SHA_512_ONLY_USERNAME"], PasswordFile: env["PASSWORD_FILE"]}
		if s.SASLSSL == "" || s.MTLS == "" || s.Plaintext == "" || s.CAFile == "" || s.Username == "" || s.PasswordFile == "" {
			t.Fatalf("MOLGEN_TEST_SECURE: %s lacks SASL_SSL, MTLS, PLAINTEXT, CA_FILE, USERNAME or PASSWORD_FILE", file)
		}
		return s
	}
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "molgen test CA", true)
	server, serverKey := newCert(t, ca, caKey, "localhost", false)
	client, clientKey := newCert(t, ca, caKey, "molgen-client", false)
	s := &SecureBroker{
		CAFile: writePEM(t, dir, "ca.pem", ca.Raw, nil), ClientCert: writePEM(t, dir, "client.pem", client.Raw, nil),
		ClientKey: writePEM(t, dir, "client-key.pem", nil, clientKey),
		Username:  "molgen", Username512: "molgen512", PasswordFile: filepath.Join(dir, "password"),
	}
	const pw = "kfake-secret"
	if err := os.WriteFile(s.PasswordFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	serverCert := tls.Certificate{Certificate: [][]byte{server.Raw}, PrivateKey: serverKey, Leaf: server}
	s.SASLSSL = startKfake(t,
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", s.Username, pw),
		kfake.Superuser("SCRAM-SHA-256", s.Username, pw),
		kfake.Superuser("SCRAM-SHA-512", s.Username, pw),
		kfake.Superuser("SCRAM-SHA-512", s.Username512, pw),
	)
	s.MTLS = startKfake(t, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	}))
	s.Plaintext = startKfake(t)
	return s
}

func startKfake(t testing.TB, opts ...kfake.Opt) string {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatalf("starting a secured embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

// newCert makes a certificate signed by parent (self-signed when nil),
// valid for 127.0.0.1 and localhost.
func newCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage, tmpl.DNSNames, tmpl.IPAddresses = nil, nil, nil
	}
	signer, signerKey := parent, parentKey
	if parent == nil {
		signer, signerKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t testing.TB, dir, name string, cert []byte, key *ecdsa.PrivateKey) string {
	t.Helper()
	block := &pem.Block{Type: "CERTIFICATE", Bytes: cert}
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// readEnv reads KEY=VALUE lines.
func readEnv(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}
