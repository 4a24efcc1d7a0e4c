package runtime

import (
	"fmt"
	"strconv"
	"time"
)

// WireVersion is the version of molgen's Kafka message format, carried in
// every message's molgen-version header. docs/WIRE.md describes it.
const WireVersion = "1"

// Header names of molgen's Kafka messages.
const (
	hVersion  = "molgen-version"  // "1"
	hID       = "molgen-id"       // correlation id: "<session hex>.<decimal counter>", unique per reply topic
	hService  = "molgen-service"  // service name (requests)
	hMethod   = "molgen-method"   // method name (requests)
	hReplyTo  = "molgen-reply-to" // reply topic (requests that await a reply)
	hDeadline = "molgen-deadline" // RFC 3339 time, UTC, nanoseconds (requests)
	hCaller   = "molgen-caller"   // node/instance of the caller (requests; for operators)
	hSchema   = "molgen-schema"   // fingerprint of the method's types (requests; optional)
	hStatus   = "molgen-status"   // "ok" or "error" (replies)
)

// Reply statuses.
const (
	statusOK    = "ok"
	statusError = "error"
)

// Header values that never change, shared by every message (kafka-go only
// reads them).
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

func parseDeadline(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

func formatID(id uint64) string { return strconv.FormatUint(id, 10) }

// encodeError writes a service error: its message, then the identities of
// the registered error variables it matches (see RegisterErrors).
func encodeError(e *Encoder, err error) {
	e.String(errorMessage(err))
	ids := errorIdentities(err)
	e.Len(len(ids), false)
	for _, id := range ids {
		e.String(id)
	}
}

// decodeError reads what encodeError wrote.
func decodeError(d *Decoder, service, method string) (*RemoteError, error) {
	msg := d.String()
	n := d.Len(1)
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, d.String())
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return newRemoteError(service, method, msg, ids), nil
}

// errorMessage is err.Error(), or a description of its panic: an error
// type's Error method may panic (a nil *T returned as error, say).
func errorMessage(err error) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("%T (its Error method panicked: %v)", err, r)
		}
	}()
	return err.Error()
}
