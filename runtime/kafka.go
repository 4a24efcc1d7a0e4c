package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
)

// kafkaTransport carries calls between nodes over Kafka.
type kafkaTransport struct{}

func newKafkaTransport(ctx context.Context, n *Node) (*kafkaTransport, error) {
	return nil, errors.New("molgen: Kafka transport not built yet")
}

func (t *kafkaTransport) call(ctx context.Context, c *Client, method int, req, resp Message) error {
	return ErrNoRoute
}

func (t *kafkaTransport) close() error { return nil }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sanitize keeps the characters allowed in Kafka topic names.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
