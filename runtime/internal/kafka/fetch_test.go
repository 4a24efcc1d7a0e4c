package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/molgen/molgen/internal/kafkatest"
)

// transportWithTopic returns a test transport of a new app named after
// name, its topic "molgen.<app><suffix>" with partitions, and a context
// that ends with the test (a minute at most).
func transportWithTopic(t *testing.T, name, suffix string, partitions int, edit func(*Settings)) (*Transport, string, context.Context) {
	t.Helper()
	app := kafkatest.App(name)
	tr := testTransport(t, app, edit)
	topic := "molgen." + app + suffix
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if err := tr.ensureTopic(ctx, topic, partitions, time.Hour); err != nil {
		t.Fatal(err)
	}
	return tr, topic, ctx
}

// TestPartReaderReadsWhatKafkaGoWrites: records written by kafka-go's
// Writer (every compression codec, keys and values empty, null or long,
// headers of molgen's and of others, several batches) come back from the
// partReader exactly, in order, with their offsets, times and headers;
// SetOffset to an offset inside a batch starts there; FirstOffset and
// LastOffset resolve.
func TestPartReaderReadsWhatKafkaGoWrites(t *testing.T) {
	tr, topic, ctx := transportWithTopic(t, "partreader", ".reply.x", 1, nil)
	var want []kafkago.Message
	codecs := []kafkago.Compression{0, kafkago.Gzip, kafkago.Snappy, kafkago.Lz4, kafkago.Zstd}
	for i, codec := range codecs {
		w := &kafkago.Writer{
			Addr: kafkago.TCP(tr.cfg.Brokers...), Transport: tr.tr, Topic: topic,
			RequiredAcks: kafkago.RequireAll, Compression: codec, BatchTimeout: time.Millisecond, BatchSize: 1000,
		}
		var batch []kafkago.Message
		for j := range 40 {
			m := kafkago.Message{
				Value: bytes.Repeat([]byte{byte('a' + j%26)}, rand.IntN(3000)),
				Headers: []kafkago.Header{
					{Key: hID, Value: []byte(fmt.Sprintf("s.%d", j))},
					{Key: "x-other-" + fmt.Sprint(j), Value: nil},
					{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
				},
			}
			if j%3 == 1 {
				m.Key = []byte(fmt.Sprintf("key-%d-%d", i, j))
			}
			if j%7 == 0 {
				m.Headers = nil
			}
			batch = append(batch, m)
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		w.Close()
		want = append(want, batch...)
	}

	r := tr.newPartReader(topic, 0, tr.log)
	defer r.Close()
	if err := r.SetOffset(kafkago.FirstOffset); err != nil {
		t.Fatal(err)
	}
	first := int64(-1)
	for i, w := range want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if first < 0 {
			first = m.Offset
		}
		if m.Offset != first+int64(i) || m.Topic != topic || m.Partition != 0 {
			t.Fatalf("record %d: at %s/%d offset %d, want %s/0 offset %d", i, m.Topic, m.Partition, m.Offset, topic, first+int64(i))
		}
		if !bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) {
			t.Fatalf("record %d: key %q value of %d bytes, want key %q value of %d bytes", i, m.Key, len(m.Value), w.Key, len(w.Value))
		}
		if len(m.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(m.Headers), len(w.Headers))
		}
		for k, h := range w.Headers {
			if m.Headers[k].Key != h.Key || !bytes.Equal(m.Headers[k].Value, h.Value) {
				t.Fatalf("record %d: header %d is %s=%q, want %s=%q", i, k, m.Headers[k].Key, m.Headers[k].Value, h.Key, h.Value)
			}
		}
		if age := time.Since(m.Time); age < 0 || age > time.Minute {
			t.Fatalf("record %d: time %v, want about now", i, m.Time)
		}
		if m.HighWaterMark < m.Offset+1 {
			t.Fatalf("record %d: high water mark %d below its offset %d", i, m.HighWaterMark, m.Offset)
		}
	}
	if got, want := r.Offset(), first+int64(len(want)); got != want {
		t.Fatalf("Offset() = %d after reading everything, want %d", got, want)
	}

	// Into the middle of a (compressed) batch.
	mid := first + int64(len(want)) - 25
	if err := r.SetOffset(mid); err != nil {
		t.Fatal(err)
	}
	m, err := r.FetchMessage(ctx)
	if err != nil || m.Offset != mid || !bytes.Equal(m.Value, want[len(want)-25].Value) {
		t.Fatalf("after SetOffset(%d): record at %d (err %v), want the one at %d", mid, m.Offset, err, mid)
	}

	// LastOffset: nothing until a new record comes.
	if err := r.SetOffset(kafkago.LastOffset); err != nil {
		t.Fatal(err)
	}
	got := make(chan kafkago.Message, 1)
	go func() {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	time.Sleep(200 * time.Millisecond)
	if err := tr.produce(ctx, false, false, nil, kafkago.Message{Topic: topic, Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Value) != "new" || m.Offset != first+int64(len(want)) {
			t.Fatalf("after SetOffset(LastOffset): %q at %d, want %q at %d", m.Value, m.Offset, "new", first+int64(len(want)))
		}
	case <-ctx.Done():
		t.Fatal("the record written after SetOffset(LastOffset) never came")
	}
}

// TestPartReaderBreaksOff: a FetchMessage waiting on an empty partition
// returns when its context ends and when the reader is closed, without
// waiting out the broker's FetchMaxWait; a SetOffset made while it waits
// takes effect.
func TestPartReaderBreaksOff(t *testing.T) {
	tr, topic, ctx := transportWithTopic(t, "partbreak", ".reply.x", 1, func(s *Settings) { s.FetchMaxWait = 10 * time.Second })
	if err := tr.produce(ctx, false, false, nil, kafkago.Message{Topic: topic, Value: []byte("zero")}); err != nil {
		t.Fatal(err)
	}
	r := tr.newPartReader(topic, 0, tr.log)
	if err := r.SetOffset(kafkago.LastOffset); err != nil {
		t.Fatal(err)
	}

	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := r.FetchMessage(fctx); done <- err }()
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	fcancel()
	if err := <-done; err != context.Canceled || time.Since(began) > 2*time.Second {
		t.Fatalf("FetchMessage returned %v %v after its context ended; want context.Canceled at once", err, time.Since(began))
	}

	got := make(chan kafkago.Message, 1)
	go func() { m, _ := r.FetchMessage(ctx); got <- m }()
	time.Sleep(300 * time.Millisecond)
	if err := r.SetOffset(0); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Value) != "zero" {
			t.Fatalf("after SetOffset(0) while waiting: %q, want %q", m.Value, "zero")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SetOffset while FetchMessage waited did not take effect within 5s")
	}

	go func() { _, err := r.FetchMessage(ctx); done <- err }()
	time.Sleep(300 * time.Millisecond)
	began = time.Now()
	r.Close()
	select {
	case err := <-done:
		if err == nil || time.Since(began) > 2*time.Second {
			t.Fatalf("FetchMessage returned %v %v after Close; want an error at once", err, time.Since(began))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("FetchMessage still waits 5s after Close")
	}
}

// TestDecodeRecordsRejectsGarbage: truncated or corrupted fetch responses
// and record batches give an error or fewer records, never a panic.
func TestDecodeRecordsRejectsGarbage(t *testing.T) {
	// A valid batch to corrupt: one record with a key, a value and a header.
	var rec []byte
	rec = append(rec, 0)                            // attributes
	rec = binary.AppendVarint(rec, 5)               // timestamp delta
	rec = binary.AppendVarint(rec, 0)               // offset delta
	rec = binary.AppendVarint(rec, 1)               // key length
	rec = append(rec, 'k')                          //
	rec = binary.AppendVarint(rec, 2)               // value length
	rec = append(rec, 'v', 'w')                     //
	rec = binary.AppendVarint(rec, 1)               // headers
	rec = binary.AppendVarint(rec, int64(len(hID))) //
	rec = append(rec, hID...)                       //
	rec = binary.AppendVarint(rec, 3)               //
	rec = append(rec, "a.1"...)                     //
	body := binary.AppendVarint(nil, int64(len(rec)))
	body = append(body, rec...)
	batch := make([]byte, batchHeaderSize, batchHeaderSize+len(body))
	batch[batchMagicAt] = 2
	batch[batchCountAt+3] = 1
	batch = append(batch, body...)
	binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12))
	binary.BigEndian.PutUint64(batch, 42)

	msgs, err := decodeRecords(nil, batch, "t", 0, 0, 43)
	if err != nil || len(msgs) != 1 || msgs[0].Offset != 42 || string(msgs[0].Key) != "k" || string(msgs[0].Value) != "vw" ||
		len(msgs[0].Headers) != 1 || msgs[0].Headers[0].Key != hID || string(msgs[0].Headers[0].Value) != "a.1" {
		t.Fatalf("the valid batch decoded to %+v, %v", msgs, err)
	}
	if msgs, err := decodeRecords(nil, batch, "t", 0, 43, 43); err != nil || len(msgs) != 0 {
		t.Fatalf("records before the offset asked for were returned: %+v, %v", msgs, err)
	}
	for n := range len(batch) {
		msgs, _ := decodeRecords(nil, batch[:n], "t", 0, 0, 43)
		if len(msgs) != 0 {
			t.Fatalf("a batch cut at %d of %d bytes gave %d records", n, len(batch), len(msgs))
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := bytes.Clone(batch)
		for range 1 + rnd.IntN(4) {
			b[rnd.IntN(len(b))] = byte(rnd.Uint32())
		}
		decodeRecords(nil, b, "t", 0, 0, 43) // must not panic
		parseFetch(b, "t", []fetchPart{{partition: 0}})
	}
}

// TestProducerRecordsReadByKafkaGo: what the producer encodes itself
// (record batches of several records and topics, keys and header values
// null or not) is what kafka-go's own Reader reads back.
func TestProducerRecordsReadByKafkaGo(t *testing.T) {
	app := kafkatest.App("prodenc")
	tr := testTransport(t, app, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topics := []string{"molgen." + app + ".reply.a", "molgen." + app + ".reply.b"}
	for _, topic := range topics {
		if err := tr.ensureTopic(ctx, topic, 1, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []kafkago.Message
	for i := range 60 {
		m := kafkago.Message{
			Topic: topics[i%2],
			Value: bytes.Repeat([]byte{byte(i)}, i*37),
			Headers: []kafkago.Header{
				{Key: hVersion, Value: wireVersion},
				{Key: "x-empty", Value: []byte{}},
				{Key: "x-null", Value: nil},
				{Key: "x-i", Value: []byte(fmt.Sprint(i))},
			},
		}
		if i%3 == 0 {
			m.Key = []byte(fmt.Sprint("k", i))
		}
		if i%5 == 0 {
			m.Value = nil
		}
		msgs = append(msgs, m)
	}
	if err := tr.prod.write(ctx, msgs, false); err != nil {
		t.Fatal(err)
	}
	for ti, topic := range topics {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: tr.cfg.Brokers, Topic: topic, Partition: 0, Dialer: tr.dialer, MaxWait: 100 * time.Millisecond})
		// Records written in different produce requests (in flight at
		// once) may land in any order.
		seen := map[int]bool{}
		for range len(msgs) / 2 {
			got, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("%s: %v", topic, err)
			}
			if len(got.Headers) != 4 {
				t.Fatalf("%s: a record with %d headers, want 4", topic, len(got.Headers))
			}
			var i int
			fmt.Sscan(string(got.Headers[3].Value), &i)
			if i < 0 || i >= len(msgs) || i%2 != ti || seen[i] {
				t.Fatalf("%s: record %d unexpected here (read before: %v)", topic, i, seen[i])
			}
			seen[i] = true
			want := msgs[i]
			if !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) {
				t.Fatalf("%s record %d: key %q, %d value bytes; want %q, %d", topic, i, got.Key, len(got.Value), want.Key, len(want.Value))
			}
			for k, h := range want.Headers {
				if got.Headers[k].Key != h.Key || !bytes.Equal(got.Headers[k].Value, h.Value) {
					t.Fatalf("%s record %d header %d: %s=%q, want %s=%q", topic, i, k, got.Headers[k].Key, got.Headers[k].Value, h.Key, h.Value)
				}
			}
			if age := time.Since(got.Time); age < 0 || age > time.Minute {
				t.Fatalf("%s record %d: time %v, want about now", topic, i, got.Time)
			}
		}
		r.Close()
	}
}

func TestVarintLen(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 8191, 8192, 1 << 20, -(1 << 40), 1<<63 - 1, -1 << 63} {
		if got, want := varintLen(v), len(binary.AppendVarint(nil, v)); got != want {
			t.Errorf("varintLen(%d) = %d, want %d", v, got, want)
		}
	}
}

// TestGroupReaderReadsEveryPartition: a groupReader over 4 partitions
// hands each consumer its partition's records in order, from the offset
// it starts at (FirstOffset, or past the first records); a partition
// whose consumer stops taking records (more than queueLimit waiting)
// does not hold up the others.
func TestGroupReaderReadsEveryPartition(t *testing.T) {
	const parts, per = 4, 600
	tr, topic, ctx := transportWithTopic(t, "groupreader", ".req.x", parts, nil)
	w := &kafkago.Writer{Addr: kafkago.TCP(tr.cfg.Brokers...), Transport: tr.tr, Topic: topic, RequiredAcks: kafkago.RequireAll,
		Balancer: kafkago.BalancerFunc(func(m kafkago.Message, _ ...int) int { return int(m.Key[0]) }), BatchTimeout: time.Millisecond}
	defer w.Close()
	write := func(from, to int) {
		var msgs []kafkago.Message
		for i := from; i < to; i++ {
			for p := range parts {
				msgs = append(msgs, kafkago.Message{Key: []byte{byte(p)}, Value: []byte(fmt.Sprint(i))})
			}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	write(0, per)
	// Partition 1 starts after its first 10 records; the others at the start.
	g := tr.newGroupReader(topic, map[int]int64{0: kafkago.FirstOffset, 1: 10, 2: kafkago.FirstOffset, 3: kafkago.FirstOffset}, tr.log)
	defer g.close()
	read := func(p, from, to int) {
		for i := from; i < to; i++ {
			m, err := g.fetchMessage(ctx, p)
			if err != nil {
				t.Fatalf("partition %d, record %d: %v", p, i, err)
			}
			if m.Partition != p || string(m.Value) != fmt.Sprint(i) || m.Offset != int64(i) {
				t.Fatalf("partition %d: got %q at %d/%d, want %q at offset %d", p, m.Value, m.Partition, m.Offset, fmt.Sprint(i), i)
			}
		}
	}
	// Partition 0's consumer takes nothing: the others read everything.
	read(1, 10, per)
	read(2, 0, per)
	read(3, 0, per)
	// New records of partition 3 come at once, though partition 0 has
	// more than queueLimit waiting.
	began := time.Now()
	write(per, per+1)
	read(3, per, per+1)
	if took := time.Since(began); took > tr.set.FetchMaxWait/2 {
		t.Errorf("a record took %v to come while another partition's consumer was full; want well under FetchMaxWait (%v)", took, tr.set.FetchMaxWait)
	}
	// Partition 0, with more than queueLimit waiting, was left out of
	// fetches: its new record is not queued yet.
	g.mu.Lock()
	waiting := len(g.parts[0].queue) - g.parts[0].next
	g.mu.Unlock()
	if waiting != per {
		t.Errorf("partition 0 has %d records queued, want the %d of its first fetch (it is over queueLimit %d: not fetched)", waiting, per, queueLimit)
	}
	read(0, 0, per+1)
	read(1, per, per+1)
	read(2, per, per+1)

	// Closed: fetchMessage ends.
	g.close()
	if _, err := g.fetchMessage(ctx, 0); err == nil {
		t.Fatal("fetchMessage after close returned a record")
	}
}

// TestSupportsVersions: a broker's ApiVersions answer is checked for the
// Produce and Fetch versions molgen writes, and one without them is
// refused with an error that says which.
func TestSupportsVersions(t *testing.T) {
	answer := func(code int16, apis ...[3]int16) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(code))
		b = binary.BigEndian.AppendUint32(b, uint32(len(apis)))
		for _, a := range apis {
			for _, v := range a {
				b = binary.BigEndian.AppendUint16(b, uint16(v))
			}
		}
		return b
	}
	for _, c := range []struct {
		res  []byte
		want string // "" for no error
	}{
		{answer(0, [3]int16{produceKey, 3, 12}, [3]int16{fetchKey, 4, 17}, [3]int16{apiVersionsKey, 0, 4}), ""},
		{answer(0, [3]int16{produceKey, 0, 2}, [3]int16{fetchKey, 0, 3}), "does not serve Produce version 3 (it serves 0 to 2)"},
		{answer(0, [3]int16{produceKey, 3, 12}, [3]int16{fetchKey, 5, 17}), "does not serve Fetch version 4 (it serves 5 to 17)"},
		{answer(0, [3]int16{produceKey, 3, 12}), "does not serve Fetch version 4"},
		{answer(35), "Unsupported Version"},
		{answer(0, [3]int16{produceKey, 3, 12})[:9], "malformed"},
	} {
		err := supportsVersions("b:9092", c.res)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%x: %v, want no error", c.res, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%x: %v, want an error saying %q", c.res, err, c.want)
		}
	}
}

// TestAliveSeesAClosedConnection: a pooled connection that its peer has
// closed is found dead before a request is written on it; an open one
// is alive, and stays usable.
func TestAliveSeesAClosedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &brokerConn{nc: nc, br: bufio.NewReader(nc)}
	defer c.close()
	peer := <-accepted
	if !c.alive() {
		t.Fatal("an open connection was found dead")
	}
	// Still usable after the check.
	c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.br.ReadByte(); err != nil || b != 'x' {
		t.Fatalf("reading after alive: %q, %v", b, err)
	}
	peer.Close()
	time.Sleep(50 * time.Millisecond)
	if c.alive() {
		t.Fatal("a connection its peer closed was found alive")
	}
}

// TestReadersSkipToTheFirstOffset: a reader asked for records the broker
// no longer has (deleted below the partition's first offset) skips to the
// first record there is, on the reply reader and on a request consumer.
func TestReadersSkipToTheFirstOffset(t *testing.T) {
	tr, topic, ctx := transportWithTopic(t, "skipfirst", ".req.x", 1, nil)
	for i := range 10 {
		if err := tr.produce(ctx, false, false, nil, kafkago.Message{Topic: topic, Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(tr.cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Offset = 6
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	res, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := res.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("deleting records: %v", kafkago.Error(code))
	}

	// A reader that does not skip waits for records that never come.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r := tr.newPartReader(topic, 0, tr.log)
	defer r.Close()
	if err := r.SetOffset(2); err != nil {
		t.Fatal(err)
	}
	if m, err := r.FetchMessage(ctx); err != nil || m.Offset != 6 || string(m.Value) != "6" {
		t.Fatalf("partReader from offset 2 of a partition starting at 6: %q at %d, %v; want \"6\" at 6", m.Value, m.Offset, err)
	}
	g := tr.newGroupReader(topic, map[int]int64{0: 2}, tr.log)
	defer g.close()
	if m, err := g.fetchMessage(ctx, 0); err != nil || m.Offset != 6 || string(m.Value) != "6" {
		t.Fatalf("groupReader from offset 2 of a partition starting at 6: %q at %d, %v; want \"6\" at 6", m.Value, m.Offset, err)
	}
}
