package kafkatest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// AuthzBroker is a real Apache Kafka that enforces ACLs (kafka.sh start
// -secure -authorizer): StandardAuthorizer, no ACL means denied, super
// users the admin and the broker itself.
type AuthzBroker struct {
	// SASLSSL is the SASL_SSL listener (PLAIN, SCRAM-SHA-256/512); CAFile
	// signs its certificate.
	SASLSSL, CAFile string
	// Plaintext is a listener whose clients are ANONYMOUS, who may do
	// nothing without ACLs.
	Plaintext string
	// AdminUser is a super user with the password in AdminPasswordFile;
	// AdminConfig is a client properties file that reaches SASLSSL as it
	// (kafka-acls.sh --command-config).
	AdminUser, AdminPasswordFile, AdminConfig string
	// KafkaSh is scripts/kafka/kafka.sh of this checkout ("kafka.sh acls"
	// runs kafka-acls.sh).
	KafkaSh string
}

// AdminPassword returns the content of AdminPasswordFile.
func (b *AuthzBroker) AdminPassword(t testing.TB) string {
	data, err := os.ReadFile(b.AdminPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// Authz returns a broker that enforces ACLs: the one whose env file
// MOLGEN_TEST_AUTHZ names (what kafka.sh start -secure -authorizer writes to
// $MOLGEN_KAFKA_DIR/secure/env; .ci/run starts one), or else one that it
// starts with kafka.sh on free ports below the ephemeral range and stops
// when the test ends. It never skips: without Java or the jars it fails.
func Authz(t testing.TB) *AuthzBroker {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	kafkaSh := filepath.Join(root, "scripts", "kafka", "kafka.sh")
	file := os.Getenv("MOLGEN_TEST_AUTHZ")
	if file == "" {
		file = startAuthz(t, kafkaSh)
	}
	env, err := readEnv(file)
	if err != nil {
		t.Fatalf("MOLGEN_TEST_AUTHZ: %v", err)
	}
	b := &AuthzBroker{SASLSSL: env["SASL_SSL"], CAFile: env["CA_FILE"], Plaintext: env["PLAINTEXT"],
		AdminUser: env["ADMIN_USERNAME"], AdminPasswordFile: env["ADMIN_PASSWORD_FILE"], AdminConfig: env["ADMIN_CONFIG"], KafkaSh: kafkaSh}
	if env["AUTHORIZER"] == "" || b.SASLSSL == "" || b.CAFile == "" || b.AdminUser == "" || b.AdminPasswordFile == "" || b.AdminConfig == "" {
		t.Fatalf("%s is not the env file of a broker started with kafka.sh start -secure -authorizer (it lacks AUTHORIZER, SASL_SSL, CA_FILE or ADMIN_*)", file)
	}
	return b
}

// startAuthz starts kafka.sh start -secure -authorizer in a directory of
// the test's and returns its env file; the broker stops when the test ends.
func startAuthz(t testing.TB, kafkaSh string) string {
	t.Helper()
	dir := t.TempDir()
	port := freePorts(t, 4)
	env := append(os.Environ(), "MOLGEN_KAFKA_DIR="+dir, "MOLGEN_KAFKA_HEAP_OPTS=-Xms128m -Xmx384m",
		"MOLGEN_KAFKA_CONTROLLER_PORT="+strconv.Itoa(port+1), "MOLGEN_KAFKA_SASL_SSL_PORT="+strconv.Itoa(port+2),
		"MOLGEN_KAFKA_SSL_PORT="+strconv.Itoa(port+3))
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(kafkaSh, args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.Bytes(), err
	}
	t.Cleanup(func() {
		if out, err := run("stop"); err != nil {
			t.Errorf("kafka.sh stop: %v\n%s", err, out)
		}
	})
	began := time.Now()
	if out, err := run("start", "-secure", "-authorizer", "-port", strconv.Itoa(port)); err != nil {
		t.Fatalf("kafka.sh start -secure -authorizer -port %d: %v\n%s", port, err, out)
	}
	t.Logf("started Kafka with an authorizer on 127.0.0.1:%d-%d in %v (set MOLGEN_TEST_AUTHZ to use a running one)", port, port+3, time.Since(began).Round(time.Millisecond))
	return filepath.Join(dir, "secure", "env")
}

// freePorts finds n consecutive free ports on 127.0.0.1 between 20000
// and 32000: below Linux's ephemeral range (32768-60999), so no outgoing
// connection takes one meanwhile, and away from the ports CI's brokers use.
func freePorts(t testing.TB, n int) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(12000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d free consecutive ports between 20000 and 32000", n)
	return 0
}

// moduleRoot finds the directory of molgen's go.mod above the working
// directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/molgen/molgen\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/molgen/molgen above the working directory")
		}
		dir = parent
	}
}
