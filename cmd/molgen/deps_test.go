package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGeneratorDoesNotLinkKafka: the molgen command reads code and writes
// code; the Kafka client belongs to the runtime alone.
func TestGeneratorDoesNotLinkKafka(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/segmentio/kafka-go") || dep == "github.com/molgen/molgen/runtime" {
			t.Errorf("cmd/molgen links %s", dep)
		}
	}
}

// TestNothingLinksKafkaGo: the whole module speaks Kafka through franz-go
// alone; kafka-go is in no package's dependencies, tests included.
func TestNothingLinksKafkaGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "github.com/molgen/molgen/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/segmentio/kafka-go") {
			t.Errorf("the module links %s", dep)
		}
	}
}
