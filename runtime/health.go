package runtime

import "errors"

// Ready returns nil when the node serves: it has started and, when it
// uses Kafka, every hosted service has been assigned its partitions (or
// knows that other instances hold them) and the node's reply topic is
// read. Before that, and from the moment Close begins (while it drains),
// it returns an error saying what is missing. It is what a readiness
// probe asks (node binaries serve it as /readyz).
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

// Healthy returns nil unless the node uses Kafka and finds it
// unreachable (node binaries serve it as /healthz).
func (n *Node) Healthy() error {
	if r := n.remote.Load(); r != nil {
		if err := r.t.Healthy(); err != nil {
			return errors.New("molgen: " + err.Error())
		}
	}
	return nil
}
