package main

import (
	"context"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
)

// TestBenchmarkCallsAreKafkaRecords: every call the benchmark counts, of
// every implementation in every topology, is a record in a request topic
// (two in the chain): no target can be met by a call that skips Kafka
// (one node that calls and serves has prefer_local off).
func TestBenchmarkCallsAreKafkaRecords(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	const calls = 30
	for _, topo := range topologies {
		for _, im := range impls {
			if im.only != nil && !im.only(topo) {
				continue
			}
			t.Run(topo.key+"/"+im.name, func(t *testing.T) {
				c := im.make(brokers, 2, topo)
				defer c.close()
				for i := range calls {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					err := c.add(ctx, i)
					cancel()
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
				}
				hops := 1
				if topo.chain {
					hops = 2
				}
				records := 0
				for _, topic := range c.requestTopics() {
					records += len(kafkatest.Records(t, topic))
				}
				if records != calls*hops {
					t.Fatalf("%d calls left %d records in the request topics %v, want %d", calls, records, c.requestTopics(), calls*hops)
				}
			})
		}
	}
}
