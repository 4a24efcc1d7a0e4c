package kafka

import "time"

// workerIdle is how long a worker goroutine waits for more work.
const workerIdle = time.Second

// workers runs functions on goroutines that wait workerIdle for the next
// one before they end. A served request runs deep (handler, codec, reply
// write): on a fresh goroutine its stack grows, by copying, every time; a
// kept goroutine has grown it already.
type workers struct {
	idle chan func() // unbuffered: a send succeeds only to a waiting worker
	stop chan struct{}
}

func newWorkers() workers { return workers{idle: make(chan func()), stop: make(chan struct{})} }

// close ends the idle workers (a drained node serves nothing more).
func (w *workers) close() { close(w.stop) }

// Go runs f on an idle worker, or on a new one.
func (w *workers) Go(f func()) {
	select {
	case w.idle <- f:
	default:
		go w.run(f)
	}
}

func (w *workers) run(f func()) {
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	for {
		f()
		timer.Reset(workerIdle)
		select {
		case f = <-w.idle:
		case <-timer.C:
			return
		case <-w.stop:
			return
		}
	}
}
