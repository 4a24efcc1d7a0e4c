package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogLimiterLetsOneLinePerKindPerInterval(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewTestLimiter(func() time.Time { return now })
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for i := range 100 {
		l.Log(log, slog.LevelWarn, "bad request", "bad request", "n", i)
	}
	l.Log(log, slog.LevelWarn, "read replies", "reading replies")
	now = now.Add(Every - time.Millisecond)
	l.Log(log, slog.LevelWarn, "bad request", "bad request", "n", 100)
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("within %v: %d lines, want 2 (one per kind):\n%s", Every, got, buf.String())
	}
	now = now.Add(time.Millisecond)
	buf.Reset()
	l.Log(log, slog.LevelWarn, "bad request", "bad request", "n", 101)
	l.Log(log, slog.LevelWarn, "bad request", "bad request", "n", 102)
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "n=101") || !strings.Contains(got, "suppressed=100") {
		t.Fatalf("after %v: %q, want the line of n=101 with suppressed=100", Every, got)
	}
	now = now.Add(Every)
	buf.Reset()
	l.Log(log, slog.LevelWarn, "bad request", "bad request", "n", 103)
	if got := buf.String(); !strings.Contains(got, "suppressed=1") {
		t.Fatalf("the next interval: %q, want suppressed=1", got)
	}
	now = now.Add(Every)
	buf.Reset()
	l.Log(log, slog.LevelWarn, "bad request", "bad request", "n", 104)
	if got := buf.String(); strings.Contains(got, "suppressed") {
		t.Fatalf("with nothing suppressed: %q", got)
	}
}

func TestLogLimiterSkipsDisabledLevels(t *testing.T) {
	var l Limiter
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	l.Log(log, slog.LevelWarn, "k", "hidden")
	if ok, n := l.Allow("k"); !ok || n != 0 {
		t.Fatalf("a line of a disabled level used up the kind's turn: %v, %d", ok, n)
	}
}
