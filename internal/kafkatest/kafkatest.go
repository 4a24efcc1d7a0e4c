// Package kafkatest gives tests a Kafka broker: the real one named by
// MOLGEN_TEST_BROKERS (CI starts Apache Kafka with scripts/kafka), or else
// an embedded kfake broker started in-process. Tests never skip for want of
// a broker.
package kafkatest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/molgen/molgen/internal/broker"
)

var (
	once     sync.Once
	brokers  []string
	startErr error
)

// Brokers returns the bootstrap addresses of the test broker.
func Brokers(t testing.TB) []string {
	t.Helper()
	once.Do(func() {
		if env := os.Getenv("MOLGEN_TEST_BROKERS"); env != "" {
			brokers = strings.Split(env, ",")
			return
		}
		b, err := broker.Start("127.0.0.1:0")
		if err != nil {
			startErr = err
			return
		}
		brokers = []string{b.Addr()}
	})
	if startErr != nil {
		t.Fatalf("starting the embedded Kafka broker: %v", startErr)
	}
	return brokers
}

// Real reports whether tests run against a real Kafka broker.
func Real() bool { return os.Getenv("MOLGEN_TEST_BROKERS") != "" }

// App returns a fresh app name, so that each test has its own topics and
// consumer groups.
func App(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}
