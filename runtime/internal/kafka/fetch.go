package kafka

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// partReader reads one partition of a topic from its leader, for the
// reply reader, in place of kafka-go's Reader (the request consumers
// read with a groupReader, groupfetch.go, which shares its fetch and
// decoding).
//
// kafka-go's Reader decodes every header key and value into a fresh
// string and slice (two allocations per header, nine headers a request),
// and hands each message from its fetching goroutine to the reader over a
// channel. Measured at 256 calls in flight, that was 45% of a remote
// call's allocations. partReader fetches in the goroutine that reads, on
// a connection of its own (dialed, secured and authenticated by
// kafka-go's Dialer), and decodes each fetch response in place: keys,
// values and header values are views of the response's one buffer (which
// nothing writes again), molgen's header names are the constants, and
// the headers of a fetch share slabs.
//
// It keeps the Reader's rules: reading before the partition's first
// offset skips to it; reading past its end waits for it to grow (the
// watch, recover.go, notices a topic that started anew); a moved leader or
// a broken connection makes it look the leader up again and reconnect;
// errors are returned once they repeat (maxAttempts in a row).
type partReader struct {
	t         *Transport
	topic     string
	partition int
	spec      fetchSpec
	backMin   time.Duration
	backMax   time.Duration
	log       *slog.Logger

	// Owned by the goroutine that fetches.
	conn    *brokerConn
	batch   []kafkago.Message // fetched, not yet returned
	next    int               // batch[next] is returned next
	version int               // of the offset batch was fetched at
	req     []byte            // the fetch request, rewritten per fetch
	fails   int               // errors in a row

	mu      sync.Mutex
	offset  int64 // the next offset to return
	ver     int   // bumped by SetOffset: what was fetched before is dropped
	closed  bool
	current *brokerConn // conn, for SetOffset and Close to break
}

// maxAttempts is how many fetch errors in a row a partReader retries
// before it returns one.
const maxAttempts = 3

func (t *Transport) newPartReader(topic string, partition int, log *slog.Logger) *partReader {
	set := t.set
	return &partReader{
		t: t, topic: topic, partition: partition,
		spec:    fetchSpecOf(set),
		backMin: set.ReadBackoffMin,
		backMax: set.ReadBackoffMax,
		log:     log,
	}
}

// fetchSpecOf is how molgen's readers fetch: a fetch is answered as soon
// as one record is there.
func fetchSpecOf(set Settings) fetchSpec {
	return fetchSpec{maxWait: set.FetchMaxWait, readLimit: set.ReadBatchTimeout, minBytes: 1, maxBytes: int32(min(set.FetchMaxBytes, 1<<30))}
}

// SetOffset moves the reader: the next record returned is the one at
// offset (or kafkago.FirstOffset, kafkago.LastOffset: the partition's
// first or end offset when it next fetches). It may be called while
// FetchMessage waits: a fetch in flight is broken off, and what it
// returns is dropped.
func (r *partReader) SetOffset(offset int64) error {
	if offset < 0 && offset != kafkago.FirstOffset && offset != kafkago.LastOffset {
		return fmt.Errorf("molgen: reading %s/%d: no offset %d", r.topic, r.partition, offset)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return io.ErrClosedPipe
	}
	r.offset = offset
	r.ver++
	if r.current != nil {
		r.current.breakOff()
	}
	return nil
}

// Offset returns the offset of the next record FetchMessage returns.
func (r *partReader) Offset() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.offset
}

// Close breaks off a fetch in flight and closes the connection.
func (r *partReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.current != nil {
		r.current.close()
	}
	return nil
}

// FetchMessage returns the next record, fetching when none is left of the
// last fetch. Only one goroutine calls it.
func (r *partReader) FetchMessage(ctx context.Context) (kafkago.Message, error) {
	for {
		r.mu.Lock()
		closed, ver, offset := r.closed, r.ver, r.offset
		if !closed && ver == r.version && r.next < len(r.batch) {
			m := r.batch[r.next]
			r.batch[r.next] = kafkago.Message{} // let the fetch's buffer go with the last one
			r.next++
			r.offset = m.Offset + 1
			r.mu.Unlock()
			return m, nil
		}
		r.mu.Unlock()
		if closed {
			r.closeConn()
			return kafkago.Message{}, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return kafkago.Message{}, err
		}
		r.batch, r.next, r.version = r.batch[:0], 0, ver
		var err error
		if offset < 0 {
			err = r.reposition(ctx, offset)
		} else {
			err = r.fetch(ctx, offset)
		}
		if err == nil {
			r.fails = 0
			continue
		}
		if ctx.Err() != nil {
			r.closeConn()
			return kafkago.Message{}, ctx.Err()
		}
		r.mu.Lock()
		moved := r.ver != ver || r.closed
		r.mu.Unlock()
		if moved {
			continue // broken off by SetOffset or Close
		}
		r.fails++
		if r.fails >= maxAttempts {
			r.fails = 0
			return kafkago.Message{}, err
		}
		r.log.Debug("fetching", "topic", r.topic, "partition", r.partition, "offset", offset, "err", err)
		sleep(ctx, backoffOf(r.fails, r.backMin, r.backMax))
	}
}

// backoffOf is the pause before retry attempt n: n²·lo, at most hi.
func backoffOf(n int, lo, hi time.Duration) time.Duration {
	return min(time.Duration(n*n)*lo, hi)
}

// fetch fetches once from offset and decodes what comes into r.batch.
func (r *partReader) fetch(ctx context.Context, offset int64) error {
	c, err := r.connect(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.breakOff)
	defer stop()
	part := [1]fetchPart{{partition: int32(r.partition), offset: offset}}
	if err := c.fetch(&r.req, r.spec, r.topic, part[:]); err != nil {
		r.closeConn()
		return err
	}
	res := &part[0]
	switch code := res.errorCode; {
	case code == 0:
	case kafkago.Error(code) == kafkago.OffsetOutOfRange:
		return r.reposition(ctx, offset)
	case kafkago.Error(code) == kafkago.RequestTimedOut:
		return nil // nothing came in time: fetch again
	default:
		// A moved leader, a topic gone or not yet there, ...: look the
		// leader up again.
		r.closeConn()
		return fmt.Errorf("fetching %s/%d at offset %d: %w", r.topic, r.partition, offset, kafkago.Error(code))
	}
	r.mu.Lock()
	moved := r.ver != r.version
	r.mu.Unlock()
	if moved {
		return nil
	}
	r.batch, err = decodeRecords(r.batch[:0], res.records, r.topic, r.partition, offset, res.highWater)
	return err
}

// reposition moves the reader from an offset it cannot fetch at: a
// symbolic one (kafkago.FirstOffset, LastOffset) or one outside the
// partition (see placeOffset). Past the end, it waits.
func (r *partReader) reposition(ctx context.Context, offset int64) error {
	next, past, err := r.t.placeOffset(ctx, r.log, r.topic, r.partition, offset)
	if err != nil {
		return err
	}
	if past {
		// Wait for the partition to grow (or the watch to move the reader).
		sleep(ctx, r.backMax)
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.version == r.ver && r.offset == offset {
		r.offset = next
	}
	return nil
}

// placeOffset tells where a reader of a partition goes from offset, which
// it cannot fetch at: kafkago.FirstOffset and LastOffset stand for the
// partition's first and end offsets; before the first offset, it skips
// to it; past the end (past), it waits for records; in between (records
// came meanwhile), it fetches again.
func (t *Transport) placeOffset(ctx context.Context, log *slog.Logger, topic string, partition int, offset int64) (next int64, past bool, err error) {
	first, last, err := t.offsetsOf(ctx, topic, partition)
	if err != nil {
		return 0, false, fmt.Errorf("reading the offsets of %s/%d: %w", topic, partition, err)
	}
	switch {
	case offset == kafkago.FirstOffset:
		return first, false, nil
	case offset == kafkago.LastOffset:
		return last, false, nil
	case offset < first:
		log.Debug("reading before the first offset: skipping to it", "topic", topic, "partition", partition, "offset", offset, "first", first)
		return first, false, nil
	case offset < last:
		return offset, false, nil
	}
	log.Debug("reading past the last offset", "topic", topic, "partition", partition, "offset", offset, "last", last)
	return offset, true, nil
}

// offsetsOf returns the first and the end offset of a partition.
func (t *Transport) offsetsOf(ctx context.Context, topic string, partition int) (first, last int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
	defer cancel()
	res, err := t.admin.ListOffsets(ctx, &kafkago.ListOffsetsRequest{
		Topics: map[string][]kafkago.OffsetRequest{topic: {kafkago.FirstOffsetOf(partition), kafkago.LastOffsetOf(partition)}},
	})
	if err != nil {
		return 0, 0, err
	}
	for _, p := range res.Topics[topic] {
		if p.Partition != partition {
			continue
		}
		if p.Error != nil {
			return 0, 0, p.Error
		}
		return p.FirstOffset, p.LastOffset, nil
	}
	return 0, 0, fmt.Errorf("no offsets of %s/%d in the answer", topic, partition)
}

func (r *partReader) closeConn() {
	r.mu.Lock()
	c := r.conn
	r.conn, r.current = nil, nil
	r.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// connect returns the connection to the partition's leader, dialing it
// when there is none.
func (r *partReader) connect(ctx context.Context) (*brokerConn, error) {
	if r.conn != nil {
		return r.conn, nil
	}
	addr, err := r.t.leaderOf(ctx, r.topic, r.partition)
	if err != nil {
		return nil, err
	}
	c, err := r.t.dialBroker(ctx, addr)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.close()
		return nil, io.EOF
	}
	r.conn, r.current = c, c
	return c, nil
}

// leaderOf returns the address of a partition's leader.
func (t *Transport) leaderOf(ctx context.Context, topic string, partition int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
	defer cancel()
	md, err := t.admin.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return "", fmt.Errorf("looking up the leader of %s/%d: %w", topic, partition, err)
	}
	for _, tp := range md.Topics {
		if tp.Name != topic {
			continue
		}
		if tp.Error != nil {
			return "", fmt.Errorf("looking up the leader of %s/%d: %w", topic, partition, tp.Error)
		}
		for _, p := range tp.Partitions {
			if p.ID != partition {
				continue
			}
			if p.Error != nil {
				return "", fmt.Errorf("looking up the leader of %s/%d: %w", topic, partition, p.Error)
			}
			if p.Leader.Host == "" {
				return "", fmt.Errorf("looking up the leader of %s/%d: %w", topic, partition, kafkago.LeaderNotAvailable)
			}
			return net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), nil
		}
	}
	return "", fmt.Errorf("looking up the leader of %s/%d: %w", topic, partition, kafkago.UnknownTopicOrPartition)
}

// brokerConn is a connection to a broker of molgen's own: a partReader's
// fetches, or one of the producer's produce requests at a time.
type brokerConn struct {
	nc     net.Conn
	br     *bufio.Reader
	corrID int32
	once   sync.Once
}

// dialBroker connects to a broker, secured and authenticated as the
// transport's Dialer does it: the Dialer dials (TLS included, through its
// DialFunc) and authenticates; the connection it made is then used
// directly.
func (t *Transport) dialBroker(ctx context.Context, addr string) (*brokerConn, error) {
	d := *t.dialer
	tlsConf := d.TLS
	d.TLS = nil
	var nc net.Conn
	d.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		var dialer net.Dialer
		c, err := dialer.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if tlsConf != nil {
			conf := tlsConf
			if conf.ServerName == "" {
				conf = conf.Clone()
				host, _, _ := net.SplitHostPort(addr)
				conf.ServerName = host
			}
			tc := tls.Client(c, conf)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			c = tc
		}
		nc = c
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
	defer cancel()
	if _, err := d.DialContext(ctx, "tcp", addr); err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, &dialError{err}
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c := &brokerConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
	if err := c.checkVersions(addr, time.Now().Add(t.set.AdminTimeout)); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// dialError is the failure of a connection before any request of a
// caller's was written on it: a write that failed so may be retried even
// where a duplicate would harm.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// apiVersionsKey is the API key of ApiVersions.
const apiVersionsKey = 18

// checkVersions asks the broker which API versions it serves
// (ApiVersions v0) and fails, saying so, unless it serves the Produce and
// Fetch versions molgen writes.
func (c *brokerConn) checkVersions(addr string, deadline time.Time) error {
	res, err := c.roundTrip(appendRequestHeader(nil, apiVersionsKey, 0), deadline, 1<<20)
	if err != nil {
		return &dialError{fmt.Errorf("asking %s for its API versions: %w", addr, err)}
	}
	return supportsVersions(addr, res)
}

// supportsVersions reads an ApiVersions v0 response and checks that it
// covers Produce v3 and Fetch v4.
func supportsVersions(addr string, res []byte) error {
	w := &wireReader{b: res}
	if code := w.i16(); code != 0 && !w.bad {
		return fmt.Errorf("asking %s for its API versions: %w", addr, kafkago.Error(code))
	}
	need := map[int16]struct {
		name    string
		version int16
	}{produceKey: {"Produce", produceVersion}, fetchKey: {"Fetch", fetchVersion}}
	served := map[int16][2]int16{}
	for range w.count() {
		key, lo, hi := w.i16(), w.i16(), w.i16()
		served[key] = [2]int16{lo, hi}
	}
	if w.bad {
		return fmt.Errorf("asking %s for its API versions: %w", addr, errMalformed)
	}
	for _, key := range []int16{produceKey, fetchKey} {
		n := need[key]
		r, ok := served[key]
		if !ok || n.version < r[0] || n.version > r[1] {
			return fmt.Errorf("molgen: the broker at %s does not serve %s version %d (it serves %d to %d): molgen needs Kafka 0.11 or newer, and one that still serves it", addr, n.name, n.version, r[0], r[1])
		}
	}
	return nil
}

// breakOff makes a read or write in progress fail at once. The connection
// is of no use afterwards.
func (c *brokerConn) breakOff() { c.nc.SetDeadline(time.Unix(1, 0)) }

func (c *brokerConn) close() { c.once.Do(func() { c.nc.Close() }) }

// Fetch request and response version 4: the oldest Kafka 4 serves, and
// the newest without tagged fields. It has all a reader of one partition
// needs.
const (
	fetchKey     = 1
	fetchVersion = 4
	clientID     = "molgen"
)

// fetchSpec is how a fetch request asks.
type fetchSpec struct {
	maxWait   time.Duration
	readLimit time.Duration // for reading the response, beyond maxWait
	minBytes  int32
	maxBytes  int32 // of the response, and of each partition's records
}

// fetchPart is one partition of a fetch: asked at offset, answered with
// the rest.
type fetchPart struct {
	partition int32
	offset    int64

	answered  bool
	errorCode int16
	highWater int64
	records   []byte
}

// fetch sends one fetch request for parts of topic and reads its response
// into them. buf is the request's buffer, kept for the next one.
func (c *brokerConn) fetch(buf *[]byte, spec fetchSpec, topic string, parts []fetchPart) error {
	b := appendRequestHeader((*buf)[:0], fetchKey, fetchVersion)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(spec.maxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, uint32(spec.minBytes))
	b = binary.BigEndian.AppendUint32(b, uint32(spec.maxBytes))
	b = append(b, 0)                        // isolation level: read uncommitted
	b = binary.BigEndian.AppendUint32(b, 1) // topics
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(parts)))
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(p.partition))
		b = binary.BigEndian.AppendUint64(b, uint64(p.offset))
		b = binary.BigEndian.AppendUint32(b, uint32(spec.maxBytes))
	}
	*buf = b
	res, err := c.roundTrip(b, time.Now().Add(spec.maxWait+spec.readLimit), spec.maxBytes+1<<20)
	if err != nil {
		return err
	}
	return parseFetch(res, topic, parts)
}

// appendRequestHeader begins a request: its size (set by roundTrip), API
// key and version, correlation id (set by roundTrip) and client id.
func appendRequestHeader(b []byte, key, version int16) []byte {
	b = append(b, 0, 0, 0, 0) // size
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = append(b, 0, 0, 0, 0) // correlation id
	return appendString(b, clientID)
}

// roundTrip sends a request made with appendRequestHeader and returns its
// response's body (after the correlation id), of at most max bytes.
func (c *brokerConn) roundTrip(req []byte, deadline time.Time, max int32) ([]byte, error) {
	corr := c.stamp(req)
	c.nc.SetDeadline(deadline)
	if _, err := c.nc.Write(req); err != nil {
		return nil, err
	}
	return c.readResponse(corr, deadline, max)
}

// stamp sets the size and the next correlation id of a request made with
// appendRequestHeader, and returns the id.
func (c *brokerConn) stamp(req []byte) int32 {
	c.corrID++
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	binary.BigEndian.PutUint32(req[8:], uint32(c.corrID))
	return c.corrID
}

// readResponse reads the response to request corr and returns its body,
// of at most max bytes.
func (c *brokerConn) readResponse(corr int32, deadline time.Time, max int32) ([]byte, error) {
	c.nc.SetReadDeadline(deadline)
	var head [8]byte
	if _, err := io.ReadFull(c.br, head[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if size < 4 || size-4 > max {
		return nil, fmt.Errorf("%w: a response of %d bytes", errMalformed, size)
	}
	if got := int32(binary.BigEndian.Uint32(head[4:])); got != corr {
		return nil, fmt.Errorf("%w: the response to request %d, not %d", errMalformed, got, corr)
	}
	buf := make([]byte, size-4)
	if _, err := io.ReadFull(c.br, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// errMalformed is the error of a response that does not parse.
var errMalformed = errors.New("malformed response from Kafka")

// reader reads big-endian fields off a buffer; once one is missing, every
// read returns zero and bad is set.
type wireReader struct {
	b   []byte
	bad bool
}

func (w *wireReader) take(n int) []byte {
	if n < 0 || len(w.b) < n {
		w.bad, w.b = true, nil
		return nil
	}
	v := w.b[:n:n]
	w.b = w.b[n:]
	return v
}

func (w *wireReader) i8() int8 {
	if v := w.take(1); v != nil {
		return int8(v[0])
	}
	return 0
}

func (w *wireReader) i16() int16 {
	if v := w.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (w *wireReader) i32() int32 {
	if v := w.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (w *wireReader) i64() int64 {
	if v := w.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (w *wireReader) varint() int64 {
	v, n := binary.Varint(w.b)
	if n <= 0 {
		w.bad, w.b = true, nil
		return 0
	}
	w.b = w.b[n:]
	return v
}

// count reads an array's length: none once a field was missing, and at
// most one element per byte left.
func (w *wireReader) count() int {
	n := int(w.i32())
	if w.bad || n < 0 {
		return 0
	}
	if n > len(w.b) {
		w.bad, w.b = true, nil
		return 0
	}
	return n
}

// varBytes reads a varint length and that many bytes (nil for -1).
func (w *wireReader) varBytes() []byte {
	n := w.varint()
	if n < 0 || w.bad {
		return nil
	}
	if n > int64(len(w.b)) {
		w.bad, w.b = true, nil
		return nil
	}
	return w.take(int(n))
}

// parseFetch reads a version 4 fetch response (after its header) into
// the parts it answers.
func parseFetch(buf []byte, topic string, parts []fetchPart) error {
	w := &wireReader{b: buf}
	w.i32() // throttle time
	for range w.count() {
		name := w.take(int(w.i16()))
		for range w.count() {
			id := w.i32()
			code, hw := w.i16(), w.i64()
			w.i64() // last stable offset
			if n := w.i32(); n > 0 {
				w.take(16 * int(n)) // aborted transactions
			}
			var records []byte
			if n := w.i32(); n > 0 {
				records = w.take(int(n))
			}
			if w.bad {
				return errMalformed
			}
			if string(name) != topic {
				continue
			}
			for i := range parts {
				if p := &parts[i]; p.partition == id {
					p.answered, p.errorCode, p.highWater, p.records = true, code, hw, records
				}
			}
		}
	}
	if w.bad {
		return errMalformed
	}
	for _, p := range parts {
		if !p.answered {
			return fmt.Errorf("%w: no answer for %s/%d", errMalformed, topic, p.partition)
		}
	}
	return nil
}

// Record batch layout (magic 2): the offsets of its fields.
const (
	batchHeaderSize = 61 // through the record count
	batchMagicAt    = 16
	batchAttrsAt    = 21
	batchFirstTSAt  = 27
	batchMaxTSAt    = 35
	batchCountAt    = 57
)

// decodeRecords appends the records of a fetch's record batches at or
// after offset to msgs. A batch cut off at the end (the fetch's size
// limit) is left for the next fetch.
func decodeRecords(msgs []kafkago.Message, data []byte, topic string, partition int, offset, highWater int64) ([]kafkago.Message, error) {
	var slab []kafkago.Header
	for len(data) >= 12 {
		base := int64(binary.BigEndian.Uint64(data))
		size := int(int32(binary.BigEndian.Uint32(data[8:])))
		if size < 0 {
			return msgs, errMalformed
		}
		if len(data) < 12+size {
			break // cut off
		}
		batch := data[:12+size]
		data = data[12+size:]
		if len(batch) < batchHeaderSize {
			return msgs, errMalformed
		}
		if magic := batch[batchMagicAt]; magic != 2 {
			return msgs, fmt.Errorf("record batch of magic %d at offset %d: only 2 is read", magic, base)
		}
		attrs := binary.BigEndian.Uint16(batch[batchAttrsAt:])
		if attrs&0x20 != 0 {
			continue // a control batch (transaction markers)
		}
		firstTS := int64(binary.BigEndian.Uint64(batch[batchFirstTSAt:]))
		maxTS := int64(binary.BigEndian.Uint64(batch[batchMaxTSAt:]))
		logAppendTime := attrs&0x08 != 0
		count := int(int32(binary.BigEndian.Uint32(batch[batchCountAt:])))
		records := batch[batchHeaderSize:]
		if codec := attrs & 0x07; codec != 0 {
			var err error
			if records, err = decompress(kafkago.Compression(codec), records); err != nil {
				return msgs, fmt.Errorf("record batch at offset %d: %w", base, err)
			}
		}
		if count < 0 || count > len(records) {
			return msgs, errMalformed
		}
		w := &wireReader{b: records}
		for range count {
			w.varint() // record length
			w.i8()     // attributes
			tsDelta := w.varint()
			offDelta := w.varint()
			key := w.varBytes()
			value := w.varBytes()
			nh := int(w.varint())
			if w.bad || nh < 0 || nh > len(w.b) {
				return msgs, errMalformed
			}
			if cap(slab)-len(slab) < nh {
				slab = make([]kafkago.Header, 0, max(64, nh))
			}
			start := len(slab)
			for range nh {
				k := w.varBytes()
				v := w.varBytes()
				slab = append(slab, kafkago.Header{Key: headerName(k), Value: v})
			}
			if w.bad {
				return msgs, errMalformed
			}
			off := base + offDelta
			if off < offset {
				continue // a batch begins before the offset asked for
			}
			ts := firstTS + tsDelta
			if logAppendTime {
				ts = maxTS
			}
			var headers []kafkago.Header
			if nh > 0 {
				headers = slab[start:len(slab):len(slab)]
			}
			msgs = append(msgs, kafkago.Message{
				Topic: topic, Partition: partition, Offset: off, HighWaterMark: highWater,
				Key: key, Value: value, Headers: headers, Time: time.UnixMilli(ts),
			})
		}
	}
	return msgs, nil
}

// headerName returns a header's key, as the constant string when it is
// one of molgen's (no allocation).
func headerName(k []byte) string {
	switch string(k) {
	case hVersion:
		return hVersion
	case hID:
		return hID
	case hService:
		return hService
	case hMethod:
		return hMethod
	case hReplyTo:
		return hReplyTo
	case hDeadline:
		return hDeadline
	case hCaller:
		return hCaller
	case hSchema:
		return hSchema
	case hStatus:
		return hStatus
	case hHeartbeat:
		return hHeartbeat
	case "traceparent":
		return "traceparent"
	case "tracestate":
		return "tracestate"
	case "baggage":
		return "baggage"
	}
	return string(k)
}

// decompress inflates the records of a compressed batch with kafka-go's
// codecs.
func decompress(c kafkago.Compression, data []byte) ([]byte, error) {
	codec := c.Codec()
	if codec == nil {
		return nil, fmt.Errorf("unknown compression codec %d", c)
	}
	rd := codec.NewReader(bytes.NewReader(data))
	defer rd.Close()
	return io.ReadAll(rd)
}
