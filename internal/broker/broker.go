// Package broker runs franz-go's kfake, an in-process Kafka-protocol
// broker, for development, demos and quick test runs. It is not Kafka:
// CI tests run against a real broker (scripts/kafka).
package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	c *kfake.Cluster
}

// Start starts a single-broker cluster listening on addr (host:port; port 0
// picks a free one). Options (TLS, SASL, …) are added to molgen's.
func Start(addr string, opts ...kfake.Opt) (*Broker, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("broker address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("broker address %q: bad port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if port == 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		// Let tests use short consumer-group sessions (Kafka's default
		// minimum is 6s).
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
		// A broker started again keeps nothing: it is a new cluster, and
		// says so by its id (nodes then know that every topic, offset and
		// group of the old one is gone).
		kfake.ClusterID("kfake-" + randomID()),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded broker on %s: %w", addr, err)
	}
	return &Broker{c: c}, nil
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Addr returns the broker's address.
func (b *Broker) Addr() string { return b.c.ListenAddrs()[0] }

// Close stops the broker.
func (b *Broker) Close() { b.c.Close() }

// Cluster returns the embedded kfake cluster, for tests that intercept
// its requests (kfake's Control functions).
func (b *Broker) Cluster() *kfake.Cluster { return b.c }
