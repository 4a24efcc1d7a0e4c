package kafka

import (
	"context"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/molgen/molgen/internal/kafkatest"
)

// TestGenerationOnATopicCreatedAgainForgetsTheOldOne: a member that
// remembers requests of a topic the broker lost (it finished offsets that
// the new topic has not reached, or the group's offset is past the new
// topic's end) forgets them when a generation assigns it the new topic's
// partitions, and reads from the start; a member whose memory fits the
// topic keeps it and reads from the committed offset.
func TestGenerationOnATopicCreatedAgainForgetsTheOldOne(t *testing.T) {
	app := kafkatest.App("incarnation")
	tr := testTransport(t, app, nil)
	topic := requestTopic(app, "svc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.ensureTopic(ctx, topic, 2, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Three records in partition 0, none in partition 1.
	w := &kafkago.Writer{Addr: kafkago.TCP(kafkatest.Brokers(t)...), Topic: topic, RequiredAcks: kafkago.RequireAll,
		Balancer: kafkago.BalancerFunc(func(kafkago.Message, ...int) int { return 0 }), BatchTimeout: time.Millisecond}
	defer w.Close()
	for range 3 {
		if err := w.WriteMessages(ctx, kafkago.Message{Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	newServer := func() *server {
		s := &server{t: tr, topic: topic, live: map[partOff]*job{}, finished: map[partOff]bool{}}
		s.ctx, s.stop = context.WithCancel(context.Background())
		t.Cleanup(s.stop)
		return s
	}
	gen := func(offsets ...int64) *kafkago.Generation {
		var as []kafkago.PartitionAssignment
		for i, off := range offsets {
			as = append(as, kafkago.PartitionAssignment{ID: i, Offset: off})
		}
		return &kafkago.Generation{Assignments: map[string][]kafkago.PartitionAssignment{topic: as}}
	}

	// Fits: finished offset 2 of partition 0 exists (its end is 3); the
	// group's offsets are within both partitions.
	s := newServer()
	s.finished[partOff{0, 0, 2}] = true
	g := gen(2, 0)
	s.checkIncarnation(g)
	if !s.finished[partOff{0, 0, 2}] || s.epoch != 0 {
		t.Errorf("a member whose requests fit the topic forgot them: finished %v, epoch %d", s.finished, s.epoch)
	}
	if got := g.Assignments[topic]; got[0].Offset != 2 || got[1].Offset != 0 {
		t.Errorf("start offsets moved to %+v; want the committed ones", got)
	}

	// Finished offset 7 of partition 0: the topic (end 3) is a new one.
	s = newServer()
	s.finished[partOff{0, 0, 7}] = true
	s.live[partOff{0, 1, 0}] = &job{} // partition 1 is empty: offset 0 never was
	s.checkIncarnation(gen(kafkago.FirstOffset, kafkago.FirstOffset))
	if len(s.finished) != 0 || len(s.live) != 0 || s.epoch != 1 {
		t.Errorf("after a generation on a topic created again: finished %v, live %v, epoch %d; want all forgotten in a new epoch", s.finished, s.live, s.epoch)
	}

	// The group's offset of partition 0 is past its end: read it from its
	// start instead of waiting there for records that never come.
	s = newServer()
	g = gen(50, 0)
	s.checkIncarnation(g)
	if got := g.Assignments[topic]; got[0].Offset != 0 || got[1].Offset != 0 {
		t.Errorf("start offsets %+v; want partition 0 read from its start (0)", got)
	}
	if s.epoch != 1 {
		t.Errorf("epoch %d; want a new one", s.epoch)
	}
}
