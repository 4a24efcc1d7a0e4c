package runtime

import "errors"

// Ready returns nil when the node serves: it has started and, when it
// uses Kafka, Kafka answers, every hosted service has been assigned its
// partitions (or knows that other instances hold them) and the node's
// reply topic is read. Before that, from the moment Close begins (while
// it drains), and within seconds of Kafka becoming unreachable or hung
// (no broker answers), it returns an error saying what is missing. It is
// what a readiness probe asks (node binaries serve it as /readyz); each
// change is logged once ("not ready: …", "ready again: …").
func (n *Node) Ready() error {
	switch n.state.Load() {
	case nodeNew, nodeStarting:
		return errors.New("molgen: node not started")
	case nodeClosed:
		return errors.New("molgen: node draining or closed")
	}
	if r := n.remote.Load(); r != nil {
		if err := r.t.Ready(); err != nil {
			return errors.New("molgen: " + err.Error())
		}
	}
	return nil
}

// Healthy is liveness: it returns nil unless the node's process is
// wedged (its transport's watch has not run for a minute). It never
// depends on Kafka: an outage makes the node unready, not unhealthy, so
// a liveness probe (node binaries serve it as /healthz) does not restart
// every instance while Kafka is away.
func (n *Node) Healthy() error {
	if r := n.remote.Load(); r != nil {
		if err := r.t.Healthy(); err != nil {
			return errors.New("molgen: " + err.Error())
		}
	}
	return nil
}
