package envelope

import (
	"strings"
	"unsafe"
)

// Bounds of the fields a message carries beside its payload. A field over
// its bound makes a request bad (answered with an error when its reply
// topic is valid) and a reply undeliverable; a trace header over
// MaxTrace is ignored, the message is not.
const (
	MaxID      = 64
	MaxName    = 256 // service and method names
	MaxCaller  = 512
	MaxReplyTo = 249 // Kafka's longest topic name
	MaxTrace   = 8 << 10
)

// ReplyPrefix is the prefix of every reply topic of app: a server writes
// replies to no other topic, whatever a request's reply-to says.
func ReplyPrefix(app string) string { return "molgen." + app + ".reply." }

// ValidReplyTo reports whether topic is a reply topic of app: the app's
// reply prefix, then a node and instance of topic name characters.
func ValidReplyTo(app, topic string) bool {
	prefix := ReplyPrefix(app)
	if len(topic) > MaxReplyTo || len(topic) <= len(prefix) || !strings.HasPrefix(topic, prefix) {
		return false
	}
	for i := len(prefix); i < len(topic); i++ {
		switch c := topic[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// unsafeBytes views s as bytes that are only read.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
