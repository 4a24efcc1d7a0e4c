package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What the cluster scenarios ask the 3-broker cluster, as any client
// could, with franz-go: which broker leads a partition, which one
// coordinates a group, whether every partition has all its replicas in
// sync again; and how they create the comparator's topics on the same
// brokers as molgen's. kafka.sh starts and signals the brokers; it
// answers none of these.

// clusterSize is the number of brokers of kafka.sh's cluster; their node
// ids are 1..clusterSize, as kafka.sh's -broker N.
const clusterSize = 3

// clusterAdmin asks the cluster.
type clusterAdmin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func newClusterAdmin(brokers []string) (*clusterAdmin, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(3*time.Second),
		kgo.RequestTimeoutOverhead(5*time.Second), kgo.RetryTimeout(15*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &clusterAdmin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (c *clusterAdmin) close() { c.cl.Close() }

// partitions returns the partitions of topic as the cluster describes
// them now.
func (c *clusterAdmin) partitions(ctx context.Context, topic string) (kadm.PartitionDetails, error) {
	md, err := c.adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("topic %s: not in the metadata", topic)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	return td.Partitions, nil
}

// leader returns the broker that leads partition p of topic.
func (c *clusterAdmin) leader(ctx context.Context, topic string, p int32) (int32, error) {
	ps, err := c.partitions(ctx, topic)
	if err != nil {
		return -1, err
	}
	d, ok := ps[p]
	switch {
	case !ok:
		return -1, fmt.Errorf("topic %s has no partition %d", topic, p)
	case d.Err != nil:
		return -1, fmt.Errorf("%s/%d: %w", topic, p, d.Err)
	case d.Leader < 0:
		return -1, fmt.Errorf("%s/%d has no leader", topic, p)
	}
	return d.Leader, nil
}

// coordinator returns the broker that coordinates group (a FindCoordinator
// request).
func (c *clusterAdmin) coordinator(ctx context.Context, group string) (int32, error) {
	r, ok := c.adm.FindGroupCoordinators(ctx, group)[group]
	if !ok {
		return -1, fmt.Errorf("group %s: no FindCoordinator answer", group)
	}
	if r.Err != nil {
		return -1, fmt.Errorf("group %s: %w %s", group, r.Err, r.ErrMessage)
	}
	return r.NodeID, nil
}

// topicsWithPrefix lists the topics whose name starts with prefix.
func (c *clusterAdmin) topicsWithPrefix(ctx context.Context, prefix string) ([]string, error) {
	md, err := c.adm.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range md.Topics {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// notInSync describes the partitions (of every topic, internal ones too)
// whose in-sync replicas are not all their replicas, or that have no
// leader, and the brokers missing from the metadata; "" when there are
// none.
func notInSync(md kadm.Metadata) string {
	var bad []string
	for n := int32(1); n <= clusterSize; n++ {
		if !slices.ContainsFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == n }) {
			bad = append(bad, fmt.Sprintf("broker %d not registered", n))
		}
	}
	for _, td := range md.Topics.Sorted() {
		if td.Err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", td.Topic, td.Err))
			continue
		}
		for _, pd := range td.Partitions.Sorted() {
			if pd.Leader < 0 || len(pd.ISR) < len(pd.Replicas) || len(pd.OfflineReplicas) > 0 {
				bad = append(bad, fmt.Sprintf("%s/%d (leader %d, replicas %v, in sync %v)", pd.Topic, pd.Partition, pd.Leader, pd.Replicas, pd.ISR))
			}
		}
	}
	if len(bad) > 4 {
		bad = append(bad[:4], fmt.Sprintf("and %d more", len(bad)-4))
	}
	return strings.Join(bad, "; ")
}

// waitInSync waits until every broker is registered and every partition
// of every topic has a leader and all its replicas in sync, within limit.
func (c *clusterAdmin) waitInSync(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	last := "no answer yet"
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		md, err := c.adm.Metadata(rctx)
		rcancel()
		if err == nil {
			if last = notInSync(md); last == "" {
				return time.Since(start), nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("the cluster's replicas were not all in sync within %v: %s", limit, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// electPreferred moves every partition's leadership back to its
// preferred replica (between scenarios, so that each starts balanced).
func (c *clusterAdmin) electPreferred() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	if err != nil {
		return err
	}
	for _, ps := range res {
		for _, r := range ps {
			if r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
				return fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, r.Err)
			}
		}
	}
	return nil
}

// mirrorTopic creates topic with the partitions of model on the same
// brokers, each partition's current leader first (so that it leads the
// copy too), and returns the assignment.
func (c *clusterAdmin) mirrorTopic(ctx context.Context, topic, model string, configs map[string]string) (map[int32][]int32, error) {
	ps, err := c.partitions(ctx, model)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = -1
	rt.ReplicationFactor = -1
	assign := map[int32][]int32{}
	for _, pd := range ps.Sorted() {
		reps := []int32{pd.Leader}
		for _, r := range pd.Replicas {
			if r != pd.Leader {
				reps = append(reps, r)
			}
		}
		assign[pd.Partition] = reps
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition = pd.Partition
		ra.Replicas = reps
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	for k, v := range configs {
		cf := kmsg.NewCreateTopicsRequestTopicConfig()
		cf.Name, cf.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cf)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			msg := ""
			if t.ErrorMessage != nil {
				msg = ": " + *t.ErrorMessage
			}
			return nil, fmt.Errorf("creating %s: %w%s", topic, err, msg)
		}
	}
	// Wait until every partition has its leader.
	for {
		ps, err := c.partitions(ctx, topic)
		if err == nil && len(ps) == len(assign) {
			led := 0
			for _, pd := range ps {
				if pd.Err == nil && pd.Leader >= 0 {
					led++
				}
			}
			if led == len(assign) {
				return assign, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the leaders of %s: %w", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// led describes what broker n leads among the partitions of topics, e.g.
// "req p1,p3".
func led(n int32, label string, ps kadm.PartitionDetails) string {
	var parts []string
	for _, pd := range ps.Sorted() {
		if pd.Leader == n {
			parts = append(parts, fmt.Sprintf("p%d", pd.Partition))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return label + " " + strings.Join(parts, ",")
}
