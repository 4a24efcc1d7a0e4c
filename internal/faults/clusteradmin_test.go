package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestClusterBrokers: the suite's cluster listens where kafka.sh puts it.
func TestClusterBrokers(t *testing.T) {
	k := &kafkaScript{port: 19300, cluster: true}
	if got, want := k.Addr(), "127.0.0.1:19300,127.0.0.1:19302,127.0.0.1:19304"; got != want {
		t.Errorf("Addr = %s, want %s", got, want)
	}
	if got := (&kafkaScript{port: 19092}).Brokers(); !reflect.DeepEqual(got, []string{"127.0.0.1:19092"}) {
		t.Errorf("single broker: %v", got)
	}
}

// TestNotInSync: the cluster is whole when every broker is registered
// and every partition has a leader and all its replicas in sync.
func TestNotInSync(t *testing.T) {
	brokers := kadm.BrokerDetails{{NodeID: 1}, {NodeID: 2}, {NodeID: 3}}
	part := func(p, leader int32, isr ...int32) kadm.PartitionDetail {
		return kadm.PartitionDetail{Topic: "t", Partition: p, Leader: leader, Replicas: []int32{1, 2, 3}, ISR: isr}
	}
	md := kadm.Metadata{Brokers: brokers, Topics: kadm.TopicDetails{"t": {Topic: "t", Partitions: kadm.PartitionDetails{0: part(0, 1, 1, 2, 3), 1: part(1, 2, 2, 3, 1)}}}}
	if s := notInSync(md); s != "" {
		t.Errorf("whole cluster: %q", s)
	}
	md.Topics["t"].Partitions[1] = part(1, 2, 2, 3)
	if s := notInSync(md); !strings.Contains(s, "t/1 (leader 2, replicas [1 2 3], in sync [2 3])") {
		t.Errorf("a replica out of sync: %q", s)
	}
	md.Topics["t"].Partitions[1] = part(1, -1)
	md.Brokers = brokers[:2]
	if s := notInSync(md); !strings.Contains(s, "broker 3 not registered") || !strings.Contains(s, "leader -1") {
		t.Errorf("a broker gone, a partition without leader: %q", s)
	}
}
