package main

import (
	"sync"
	"sync/atomic"
)

// pendingCalls matches the replies of a comparator's calls to the calls
// waiting for them, by a numeric id carried in an "id" header.
type pendingCalls struct {
	mu   sync.Mutex
	m    map[uint64]chan []byte
	next atomic.Uint64
}

// add registers a call: its id, the channel its reply comes on, and the
// function that forgets it.
func (p *pendingCalls) add() (id uint64, reply <-chan []byte, forget func()) {
	id = p.next.Add(1)
	ch := make(chan []byte, 1)
	p.mu.Lock()
	if p.m == nil {
		p.m = map[uint64]chan []byte{}
	}
	p.m[id] = ch
	p.mu.Unlock()
	return id, ch, func() {
		p.mu.Lock()
		delete(p.m, id)
		p.mu.Unlock()
	}
}

// deliver hands a reply to the call with id, if it still waits.
func (p *pendingCalls) deliver(id uint64, value []byte) {
	p.mu.Lock()
	ch := p.m[id]
	p.mu.Unlock()
	if ch != nil {
		select {
		case ch <- value:
		default:
		}
	}
}
