package kafka

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// The producer writes its produce requests itself, on a connection of its
// own to each broker (pipeConn), instead of through
// kafka-go's Transport: kafka-go encodes a request by reflection into
// pages and hands it to a connection goroutine and back, which measured
// about a tenth of a remote call's CPU time at 256 calls in flight.

// Produce request and response version 3: the oldest Kafka 4 serves, and
// all a producer without transactions or idempotence needs.
const (
	produceKey     = 0
	produceVersion = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// producePart is the records of one topic in one produce request, all to
// one partition.
type producePart struct {
	topic     string
	partition int32
	records   []*record
	err       error // the broker's answer for it
}

// appendProduce appends a produce request (acks=all) of parts to b.
func appendProduce(b []byte, timeout time.Duration, parts []producePart, now time.Time) []byte {
	b = appendRequestHeader(b, produceKey, produceVersion)
	b = binary.BigEndian.AppendUint16(b, 0xffff) // transactional id: null
	b = binary.BigEndian.AppendUint16(b, 0xffff) // acks: all (-1)
	b = binary.BigEndian.AppendUint32(b, uint32(timeout.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(parts)))
	ms := now.UnixMilli()
	for i := range parts {
		pt := &parts[i]
		b = appendString(b, pt.topic)
		b = binary.BigEndian.AppendUint32(b, 1) // partitions
		b = binary.BigEndian.AppendUint32(b, uint32(pt.partition))
		sizeAt := len(b)
		b = append(b, 0, 0, 0, 0) // the record set's size
		b = appendBatch(b, pt.records, ms)
		binary.BigEndian.PutUint32(b[sizeAt:], uint32(len(b)-sizeAt-4))
	}
	return b
}

// appendBatch appends a record batch (magic 2, uncompressed, no producer
// id) of records, all stamped ms.
func appendBatch(b []byte, records []*record, ms int64) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, 0) // base offset
	b = append(b, 0, 0, 0, 0)               // batch length
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = append(b, 2)          // magic
	b = append(b, 0, 0, 0, 0) // crc
	crcFrom := len(b)
	b = binary.BigEndian.AppendUint16(b, 0) // attributes
	b = binary.BigEndian.AppendUint32(b, uint32(len(records)-1))
	b = binary.BigEndian.AppendUint64(b, uint64(ms))
	b = binary.BigEndian.AppendUint64(b, uint64(ms))
	b = binary.BigEndian.AppendUint64(b, 0xffffffffffffffff) // producer id
	b = binary.BigEndian.AppendUint16(b, 0xffff)             // producer epoch
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)         // base sequence
	b = binary.BigEndian.AppendUint32(b, uint32(len(records)))
	for i, r := range records {
		b = appendRecord(b, i, r.msg)
	}
	binary.BigEndian.PutUint32(b[start+8:], uint32(len(b)-start-12))
	binary.BigEndian.PutUint32(b[crcFrom-4:], crc32.Checksum(b[crcFrom:], castagnoli))
	return b
}

// appendRecord appends the i-th record of a batch.
func appendRecord(b []byte, i int, m *kafkago.Message) []byte {
	size := 1 + varintLen(0) + varintLen(int64(i)) + varBytesLen(m.Key) + varBytesLen(m.Value) + varintLen(int64(len(m.Headers)))
	for _, h := range m.Headers {
		size += varintLen(int64(len(h.Key))) + len(h.Key) + varBytesLen(h.Value)
	}
	b = binary.AppendVarint(b, int64(size))
	b = append(b, 0)              // attributes
	b = binary.AppendVarint(b, 0) // timestamp delta
	b = binary.AppendVarint(b, int64(i))
	b = appendVarBytes(b, m.Key)
	b = appendVarBytes(b, m.Value)
	b = binary.AppendVarint(b, int64(len(m.Headers)))
	for _, h := range m.Headers {
		b = binary.AppendVarint(b, int64(len(h.Key)))
		b = append(b, h.Key...)
		b = appendVarBytes(b, h.Value)
	}
	return b
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63) // zigzag
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func varBytesLen(v []byte) int {
	if v == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(v))) + len(v)
}

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// parseProduce reads a version 3 produce response into the parts it
// answers; a part it does not mention gets UnknownTopicOrPartition.
func parseProduce(buf []byte, parts []producePart) error {
	for i := range parts {
		parts[i].err = kafkago.UnknownTopicOrPartition // no answer for it
	}
	w := &wireReader{b: buf}
	for range w.count() {
		name := w.take(int(w.i16()))
		for range w.count() {
			id := w.i32()
			code := w.i16()
			w.i64() // base offset
			w.i64() // log append time
			if w.bad {
				return errMalformed
			}
			for i := range parts {
				if parts[i].partition == id && parts[i].topic == string(name) {
					parts[i].err = nil
					if code != 0 {
						parts[i].err = kafkago.Error(code)
					}
				}
			}
		}
	}
	if w.bad {
		return errMalformed
	}
	return nil
}

// idleCheck is how long a connection may sit unused before the producer
// checks that the broker has not closed it: a request written on a
// connection the broker closed would fail with an outcome unknown.
const idleCheck = time.Second

// alive reports whether the broker has not closed c (nor sent anything
// unasked, which it never does). Only while no response is awaited.
func (c *brokerConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	nc := c.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn() // a close shows on the socket below
	}
	return socketAlive(nc)
}

// pipeConn is the producer's connection to one broker: produce requests
// are written one after another without waiting for the answers (up to
// Settings.ProduceInflight), and one goroutine reads the answers, which
// come in the order of the requests. The broker works through one
// connection's requests one at a time, so while one is worked on, the
// next is already there, and records gather meanwhile.
type pipeConn struct {
	c       *brokerConn
	wmu     sync.Mutex // writes, and the order of waiting
	waiting chan *answer
	used    time.Time    // of the last write (under wmu)
	out     atomic.Int32 // requests written, not yet answered
	dead    atomic.Bool
	err     error // why it died (set before dead, never after)
	kills   sync.Once
	closes  sync.Once
}

// answer is what one request written on a pipeConn waits for.
type answer struct {
	corr     int32
	deadline time.Time
	body     []byte
	err      error
	done     chan struct{}
}

var answers = sync.Pool{New: func() any { return &answer{done: make(chan struct{}, 1)} }}

func newPipeConn(c *brokerConn, inflight int) *pipeConn {
	pc := &pipeConn{c: c, waiting: make(chan *answer, inflight), used: time.Now()}
	go pc.readLoop()
	return pc
}

// roundTrip writes req (made with appendRequestHeader) and waits for its
// answer's body. After an error the connection is dead.
func (pc *pipeConn) roundTrip(req []byte, deadline time.Time) ([]byte, error) {
	a := answers.Get().(*answer)
	defer func() {
		*a = answer{done: a.done}
		answers.Put(a)
	}()
	pc.wmu.Lock()
	if pc.dead.Load() {
		pc.wmu.Unlock()
		return nil, fmt.Errorf("%w: %w", errIdleClosed, pc.err) // nothing written on it
	}
	if pc.out.Load() == 0 && time.Since(pc.used) > idleCheck && !pc.c.alive() {
		pc.kill(fmt.Errorf("the broker closed the connection: %w", net.ErrClosed))
		pc.wmu.Unlock()
		return nil, errIdleClosed
	}
	pc.used = time.Now()
	a.corr, a.deadline = pc.c.stamp(req), deadline
	pc.c.nc.SetWriteDeadline(deadline)
	if _, err := pc.c.nc.Write(req); err != nil {
		pc.kill(err)
		pc.wmu.Unlock()
		return nil, err
	}
	pc.out.Add(1)
	pc.waiting <- a // room: at most inflight requests are written at once
	pc.wmu.Unlock()
	<-a.done
	return a.body, a.err
}

// errIdleClosed says a connection was found closed (or dead) before a
// request was written on it: nothing was written, the request goes on a
// new one.
var errIdleClosed = errors.New("molgen: an idle connection to the broker was closed")

// kill marks the connection dead and closes it: the answers awaited fail.
func (pc *pipeConn) kill(err error) {
	pc.kills.Do(func() {
		pc.err = err
		pc.dead.Store(true)
		pc.c.close()
	})
}

// readLoop reads the answers in order and hands each to its request.
func (pc *pipeConn) readLoop() {
	for a := range pc.waiting {
		if pc.dead.Load() {
			a.err = pc.err
		} else {
			a.body, a.err = pc.c.readResponse(a.corr, a.deadline, 1<<20)
			if a.err != nil {
				pc.kill(a.err)
			}
		}
		pc.out.Add(-1)
		a.done <- struct{}{}
	}
}

// close ends the read loop once the answers awaited have come.
func (pc *pipeConn) close() {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	pc.kill(net.ErrClosed)
	pc.closes.Do(func() { close(pc.waiting) })
}
