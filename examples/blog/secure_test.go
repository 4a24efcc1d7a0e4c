package blog_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/short"
)

// TestSecureNodeBinaries builds the blog's mixed placement with kafka.tls
// and kafka.sasl (SCRAM-SHA-512) and runs its nodes against the secured
// broker (the real SASL_SSL Kafka of kafka.sh start -secure under
// .ci/run, else kfake with SASL over TLS) with no flags for Kafka: the
// brokers, the CA and the user come from the placement, the password from
// the environment variable the placement names. The demo prints what the
// monolith prints.
func TestSecureNodeBinaries(t *testing.T) {
	short.Skip(t, "builds the blog's node binaries and runs them as processes")
	want, err := os.ReadFile("testdata/demo.golden")
	if err != nil {
		t.Fatal(err)
	}
	sb := kafkatest.Secure(t)
	app := kafkatest.App("blog-secure")
	dir := t.TempDir()
	placement := filepath.Join(dir, "secure.yaml")
	src := fmt.Sprintf(`app: %s
kafka:
  brokers: [%s]
  partitions: 2
  wait_for_instances: true
  tls:
    ca_file: %s
  sasl:
    mechanism: SCRAM-SHA-512
    username: %s
    password_env: BLOG_KAFKA_PASSWORD
nodes:
  content: [users, posts]
  edge: [gateway, demo]
`, app, sb.SASLSSL, sb.CAFile, sb.Username)
	if err := os.WriteFile(placement, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bins := buildBlog(t, placement, dir)
	paths := map[string]string{}
	for _, b := range bins {
		paths[b.Node] = b.Path
	}
	env := []string{"BLOG_KAFKA_PASSWORD=" + sb.Password(t), "BLOG_ADDR=127.0.0.1:0", "MOLGEN_KAFKA_BROKERS="}

	content := proctest.Start(t, "content", paths["content"], env, "-session-timeout", "2s")
	content.WaitLog(t, "node started", 60*time.Second)
	if !strings.Contains(content.Stderr(), "connected to Kafka") {
		t.Fatalf("content did not connect:\n%s", content.Stderr())
	}

	demo := exec.Command(paths["edge"], "-mains", "demo")
	demo.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	demo.Stderr = &stderr
	out, err := demo.Output()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	if string(out) != string(want) {
		t.Fatalf("the demo over SASL_SSL printed\n%s\nbut the monolith prints\n%s", out, want)
	}

	// Without the password the node fails at once, saying where it looked.
	bad := exec.Command(paths["edge"], "-mains", "demo")
	bad.Env = append(os.Environ(), "BLOG_KAFKA_PASSWORD=", "MOLGEN_KAFKA_BROKERS=")
	msg, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "BLOG_KAFKA_PASSWORD is unset or empty") {
		t.Errorf("a node without its password: %v\n%s", err, msg)
	}

	content.Signal(syscall.SIGTERM)
	if code := content.Wait(t, 60*time.Second); code != 0 {
		t.Errorf("content exited with %d after SIGTERM:\n%s", code, content.Stderr())
	}
}
