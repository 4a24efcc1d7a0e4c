package kafka

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestOutageIsLoggedOnceEachWay(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var o outage
	o.answered(log, "b:9092")
	for range 50 {
		o.failed(log, "b:9092", errors.New("dial tcp: connection refused"))
	}
	if !o.isDown() {
		t.Fatal("not down after failures")
	}
	o.answered(log, "b:9092")
	o.answered(log, "b:9092")
	out := buf.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("want one WARN with the cause:\n%s", out)
	}
	if strings.Count(out, "level=INFO") != 1 || !strings.Contains(out, "failed_probes=50") {
		t.Errorf("want one INFO with the count of failed probes:\n%s", out)
	}
}
