package kafka

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDeadlineCtxEndsAtItsDeadline(t *testing.T) {
	start := time.Now()
	ctx := newDeadlineCtx(start.Add(50 * time.Millisecond))
	defer ctx.cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(start.Add(50*time.Millisecond)) {
		t.Fatalf("Deadline() = %v, %v", d, ok)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err() before the deadline = %v", err)
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	fired := make(chan struct{})
	context.AfterFunc(ctx, func() { close(fired) })
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the deadline")
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("Done closed after %v, before the deadline", took)
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() = %v, want DeadlineExceeded", ctx.Err())
	}
	for name, ch := range map[string]<-chan struct{}{"derived context": child.Done(), "AfterFunc": fired} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s not ended with its parent", name)
		}
	}
	if !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("derived Err() = %v, want DeadlineExceeded", child.Err())
	}
}

func TestDeadlineCtxErrWithoutDone(t *testing.T) {
	ctx := newDeadlineCtx(time.Now().Add(10 * time.Millisecond))
	time.Sleep(20 * time.Millisecond)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err() past the deadline = %v", ctx.Err())
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done open while Err reports the deadline")
	}
}

func TestDeadlineCtxCancel(t *testing.T) {
	ctx := newDeadlineCtx(time.Now().Add(time.Hour))
	done := ctx.Done()
	ran := false
	stop := ctx.AfterFunc(func() { ran = true })
	if !stop() {
		t.Fatal("stop() of a pending AfterFunc = false")
	}
	ctx.cancel()
	select {
	case <-done:
	default:
		t.Fatal("Done open after cancel")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err() after cancel = %v", ctx.Err())
	}
	time.Sleep(10 * time.Millisecond)
	if ran {
		t.Fatal("a stopped AfterFunc ran")
	}
	ctx.cancel() // twice is fine
}
