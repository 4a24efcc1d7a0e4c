package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// What the transport checks before it trusts a message that anyone with
// write rights on a topic could have written: a request's fields within
// their bounds and its reply topic one of the app's (checkRequest), and,
// when the node has keys, the signature of every request and reply
// (envelope.Ring). What fails is dropped and counted; a request that only
// is malformed (not forged, not misdirected) is answered with an error.

// pendingCall is what the reply loop knows of the call a reply answers.
type pendingCall struct {
	service, method string
	ring            *envelope.Ring
}

// replySigned reports whether msg, a reply to call read from the reply
// topic replyTo, carries the signature of the call's keys over the
// reply's fields; when not, it counts and warns (rate-limited) and the
// reply is dropped.
func (t *Transport) replySigned(call *pendingCall, replyTo string, msg *kgo.Record) bool {
	f := envelope.Fields{Kind: envelope.KindReply, Service: call.service, Method: call.method, ReplyTo: replyTo, Payload: msg.Value}
	var sig string
	for _, h := range msg.Headers {
		switch h.Key {
		case hVersion:
			f.Version = bytesString(h.Value)
		case hID:
			f.ID = bytesString(h.Value)
		case hStatus:
			f.Status = bytesString(h.Value)
		case hSchema:
			f.Schema = bytesString(h.Value)
		case hSig:
			sig = bytesString(h.Value)
		}
	}
	if err := call.ring.Verify(&f, sig); err != nil {
		t.stats.forged.Add(1)
		t.warnLimited("forged reply", "dropping a reply that is not signed by the service's key: something other than the service wrote to this instance's reply topic (check the topic's write ACLs)",
			"service", call.service, "method", call.method, "topic", replyTo, "offset", msg.Offset, "err", err)
		return false
	}
	return true
}

// replyRecord fills rec with the reply of service's method to request id,
// signed when the node has keys for service.
func (t *Transport) replyRecord(rec *kgo.Record, service, method, replyTo, id string, reply transport.Reply) {
	status := statusOKValue
	if reply.Status == transport.StatusError {
		status = statusErrorValue
	}
	ring := t.cfg.Keys.For(service)
	headers := make([]kgo.RecordHeader, 3, 5+len(reply.Trace))
	headers[0] = kgo.RecordHeader{Key: hVersion, Value: wireVersion}
	headers[1] = kgo.RecordHeader{Key: hID, Value: stringBytes(id)} // the client only reads header values
	headers[2] = kgo.RecordHeader{Key: hStatus, Value: status}
	if reply.Schema != "" {
		headers = append(headers, kgo.RecordHeader{Key: hSchema, Value: stringBytes(reply.Schema)})
	}
	if ring != nil {
		f := envelope.Fields{Kind: envelope.KindReply, Version: WireVersion, ID: id, Service: service, Method: method,
			ReplyTo: replyTo, Schema: reply.Schema, Status: bytesString(status), Payload: reply.Payload}
		headers = append(headers, kgo.RecordHeader{Key: hSig, Value: ring.Sign(make([]byte, 0, envelope.SigLen), &f)})
	}
	rec.Topic, rec.Value, rec.Headers = replyTo, reply.Payload, withTrace(headers, reply.Trace)
}

// incoming is a request's fields as its headers give them.
type incoming struct {
	version, method, replyTo, deadline, id, schema, caller, sig, callID string
	trace                                                               transport.Headers
	dup                                                                 string // a molgen header given twice
}

// read fills in from msg's headers: header values are viewed as strings,
// not copied (see bytesString). Trace headers over envelope.MaxTrace are
// left out.
func (in *incoming) read(msg *kgo.Record) {
	var seen uint16
	for _, h := range msg.Headers {
		var dst *string
		var bit uint16
		switch h.Key {
		case "traceparent", "tracestate", "baggage":
			if len(h.Value) <= envelope.MaxTrace {
				in.trace = append(in.trace, transport.Header{Key: h.Key, Value: bytesString(h.Value)})
			}
			continue
		case hVersion:
			dst, bit = &in.version, 1
		case hMethod:
			dst, bit = &in.method, 2
		case hReplyTo:
			dst, bit = &in.replyTo, 4
		case hDeadline:
			dst, bit = &in.deadline, 8
		case hID:
			dst, bit = &in.id, 16
		case hSchema:
			dst, bit = &in.schema, 32
		case hCaller:
			dst, bit = &in.caller, 64
		case hSig:
			dst, bit = &in.sig, 128
		case hCallID:
			dst, bit = &in.callID, 256
		default:
			continue
		}
		if seen&bit != 0 && in.dup == "" {
			in.dup = h.Key
		}
		seen |= bit
		*dst = bytesString(h.Value)
	}
}

// problem returns what makes the request malformed, or "": a header given
// twice (which of the two would a signature have covered?) or over its
// bound.
func (in *incoming) problem() string {
	switch {
	case in.dup != "":
		return fmt.Sprintf("header %s given twice", in.dup)
	case len(in.id) > envelope.MaxID:
		return fmt.Sprintf("%s of %d bytes (at most %d)", hID, len(in.id), envelope.MaxID)
	case len(in.callID) > envelope.MaxID:
		return fmt.Sprintf("%s of %d bytes (at most %d)", hCallID, len(in.callID), envelope.MaxID)
	case len(in.method) > envelope.MaxName:
		return fmt.Sprintf("%s of %d bytes (at most %d)", hMethod, len(in.method), envelope.MaxName)
	case len(in.caller) > envelope.MaxCaller:
		return fmt.Sprintf("%s of %d bytes (at most %d)", hCaller, len(in.caller), envelope.MaxCaller)
	}
	return ""
}

// fields returns what in's signature must cover, for a request of
// service whose payload is value.
func (in *incoming) fields(service string, value []byte) envelope.Fields {
	id := in.id
	if id == "" {
		id = in.callID // a oneway request's
	}
	return envelope.Fields{Kind: envelope.KindRequest, Version: in.version, ID: id, Service: service, Method: in.method,
		Deadline: in.deadline, ReplyTo: in.replyTo, Schema: in.schema, Payload: value}
}

// clip is at most 64 bytes of a header value that came from the network,
// for messages.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
