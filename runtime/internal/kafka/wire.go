package kafka

import (
	"time"
	"unsafe"
)

// WireVersion is the version of molgen's Kafka message format, carried in
// every message's molgen-version header. docs/WIRE.md describes it.
const WireVersion = "2"

// Header names of molgen's Kafka messages.
const (
	hVersion  = "molgen-version"  // WireVersion
	hID       = "molgen-id"       // correlation id: "<session hex>.<decimal counter>", unique per reply topic
	hService  = "molgen-service"  // service name (requests)
	hMethod   = "molgen-method"   // method name (requests)
	hReplyTo  = "molgen-reply-to" // reply topic (requests that await a reply)
	hDeadline = "molgen-deadline" // RFC 3339 time, UTC, nanoseconds (requests)
	hCaller   = "molgen-caller"   // node/instance of the caller (requests; for operators)
	hSchema   = "molgen-schema"   // shape of the method's types (requests and ok replies; optional)
	hStatus   = "molgen-status"   // "ok" or "error" (replies)
	hSig      = "molgen-sig"      // "<key id>.<HMAC-SHA256>" over the message's fields and payload (when keys are set)
	hCallID   = "molgen-call-id"  // a oneway request's call id, as molgen-id's (a oneway request asks for no reply: it has no molgen-id)
)

// Reply statuses.
const (
	statusOK    = "ok"
	statusError = "error"
)

// Header values that never change, shared by every message (the client
// only reads them).
var (
	wireVersion      = []byte(WireVersion)
	statusOKValue    = []byte(statusOK)
	statusErrorValue = []byte(statusError)
)

// requestTopic names a service's request topic.
func requestTopic(app, service string) string { return "molgen." + app + ".req." + service }

// groupID names a service's consumer group.
func groupID(app, service string) string { return "molgen." + app + "." + service }

// replyTopic names an instance's reply topic.
func replyTopic(app, node, instance string) string {
	return "molgen." + app + ".reply." + node + "." + sanitize(instance)
}

func formatDeadline(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// appendDeadline appends t as formatDeadline writes it.
func appendDeadline(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, time.RFC3339Nano) }

func parseDeadline(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// bytesString views b as a string, without copying. Only for bytes that
// nothing writes again: the header values of a fetched record (franz-go
// decodes a batch into a buffer of its own, and reuses none without
// pools, which the transport does not give it).
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// stringBytes views s as bytes, without copying, for header values that
// the client only reads.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
