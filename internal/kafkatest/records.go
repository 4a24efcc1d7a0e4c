package kafkatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Records returns every record in topic, partition by partition, as Kafka
// holds it: tests use it to see which calls crossed Kafka and with which
// headers. A topic that does not exist has no records.
func Records(t testing.TB, topic string) []kafka.Message {
	t.Helper()
	brokers := Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	if len(md.Topics) != 1 || errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
		return nil
	}
	if md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v", topic, md.Topics[0].Error)
	}
	var out []kafka.Message
	for _, p := range md.Topics[0].Partitions {
		res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID)},
		}})
		if err != nil {
			t.Fatalf("offsets of %s/%d: %v", topic, p.ID, err)
		}
		po := res.Topics[topic]
		if len(po) != 1 || po[0].Error != nil {
			t.Fatalf("offsets of %s/%d: %+v", topic, p.ID, po)
		}
		first, last := po[0].FirstOffset, po[0].LastOffset
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond, ReadLagInterval: -1})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

// Exists reports whether topic exists on the test broker.
func Exists(t testing.TB, topic string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(Brokers(t)...), Transport: tr}
	// DescribeConfigs asks a broker and, unlike a metadata request, never
	// creates the topic.
	res, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil || len(res.Resources) != 1 {
		t.Fatalf("describing topic %s: %v", topic, err)
	}
	return res.Resources[0].Error == nil
}

// Header returns the value of m's header key, and whether it is there.
func Header(m kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
