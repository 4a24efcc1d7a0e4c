package kafka

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogLimiterLetsOneLinePerKindPerInterval(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &logLimiter{now: func() time.Time { return now }}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for i := range 100 {
		l.log(log, slog.LevelWarn, "bad request", "bad request", "n", i)
	}
	l.log(log, slog.LevelWarn, "read replies", "reading replies")
	now = now.Add(warnEvery - time.Millisecond)
	l.log(log, slog.LevelWarn, "bad request", "bad request", "n", 100)
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("within %v: %d lines, want 2 (one per kind):\n%s", warnEvery, got, buf.String())
	}
	now = now.Add(time.Millisecond)
	buf.Reset()
	l.log(log, slog.LevelWarn, "bad request", "bad request", "n", 101)
	l.log(log, slog.LevelWarn, "bad request", "bad request", "n", 102)
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "n=101") || !strings.Contains(got, "suppressed=100") {
		t.Fatalf("after %v: %q, want the line of n=101 with suppressed=100", warnEvery, got)
	}
	now = now.Add(warnEvery)
	buf.Reset()
	l.log(log, slog.LevelWarn, "bad request", "bad request", "n", 103)
	if got := buf.String(); !strings.Contains(got, "suppressed=1") {
		t.Fatalf("the next interval: %q, want suppressed=1", got)
	}
	now = now.Add(warnEvery)
	buf.Reset()
	l.log(log, slog.LevelWarn, "bad request", "bad request", "n", 104)
	if got := buf.String(); strings.Contains(got, "suppressed") {
		t.Fatalf("with nothing suppressed: %q", got)
	}
}

func TestLogLimiterSkipsDisabledLevels(t *testing.T) {
	var l logLimiter
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	l.log(log, slog.LevelWarn, "k", "hidden")
	if ok, n := l.allow("k"); !ok || n != 0 {
		t.Fatalf("a line of a disabled level used up the kind's turn: %v, %d", ok, n)
	}
}

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
