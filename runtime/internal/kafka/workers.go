package kafka

import "time"

// workerIdle is how long a worker goroutine waits for more work.
const workerIdle = time.Second

// workers runs requests (jobs) on goroutines that wait workerIdle for the next
// one before they end. A served request runs deep (handler, codec, reply
// write): on a fresh goroutine its stack grows, by copying, every time; a
// kept goroutine has grown it already.
type workers struct {
	idle chan *job // unbuffered: a send succeeds only to a waiting worker
	stop chan struct{}
}

func newWorkers() workers { return workers{idle: make(chan *job), stop: make(chan struct{})} }

// close ends the idle workers (a drained node serves nothing more).
func (w *workers) close() { close(w.stop) }

// Go runs j on an idle worker, or on a new one.
func (w *workers) Go(j *job) {
	select {
	case w.idle <- j:
	default:
		go w.run(j)
	}
}

func (w *workers) run(j *job) {
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	for {
		j.run()
		j = nil // let it go while idle
		timer.Reset(workerIdle)
		select {
		case j = <-w.idle:
		case <-timer.C:
			return
		case <-w.stop:
			return
		}
	}
}
