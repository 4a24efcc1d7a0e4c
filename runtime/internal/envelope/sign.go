// Package envelope is what molgen checks of a message before it trusts
// it, whatever the transport: the MAC that signs requests and replies
// (sign.go) and the bounds and rules of the fields a message carries
// beside its payload (fields.go). It knows nothing of Kafka: a transport
// fills a Fields from its message's headers and asks.
package envelope

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// MinKeyLen is the fewest bytes a signing key may have.
const MinKeyLen = 32

// Keys are the signing keys of a node: the app's key, which signs every
// request and reply, and per-service keys, which sign the requests to a
// service and its replies instead of the app's (so only the nodes that
// call or host a service can make them). Each is a ring: its first key
// signs, and every key of it verifies, so that keys can be rotated
// without stopping the app. A nil *Keys signs nothing and accepts
// everything.
type Keys struct {
	app      *Ring
	services map[string]*Ring
	// missing holds, per service that has a key of its own that this node
	// could not read, why: its messages can be neither made nor checked.
	missing map[string]error
}

// Ring is the keys of one scope (the app, or one service).
type Ring struct {
	keys []key
	pool sync.Pool // of *mac for keys[0], the signing key
}

type key struct {
	id     string // hex of the first 4 bytes of the key's SHA-256: says which key signed
	secret []byte
}

// NewKeys builds the keys of a node from the app's ring and the
// per-service rings (either may be empty; all empty gives nil: no
// signing). missing lists services with keys of their own that this node
// does not have, and why: calls to them fail at once (Missing).
func NewKeys(app [][]byte, services map[string][][]byte, missing map[string]error) (*Keys, error) {
	if len(app) == 0 && len(services) == 0 && len(missing) == 0 {
		return nil, nil
	}
	k := &Keys{services: map[string]*Ring{}, missing: missing}
	var err error
	if len(app) > 0 {
		if k.app, err = newRing(app); err != nil {
			return nil, fmt.Errorf("the app's signing key: %w", err)
		}
	}
	for svc, ring := range services {
		if k.services[svc], err = newRing(ring); err != nil {
			return nil, fmt.Errorf("the signing key of service %s: %w", svc, err)
		}
	}
	return k, nil
}

func newRing(secrets [][]byte) (*Ring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no key")
	}
	r := &Ring{}
	for _, s := range secrets {
		if len(s) < MinKeyLen {
			return nil, fmt.Errorf("a key of %d bytes: a signing key has at least %d (make one with: head -c 32 /dev/urandom | base64)", len(s), MinKeyLen)
		}
		sum := sha256.Sum256(s)
		r.keys = append(r.keys, key{id: hex.EncodeToString(sum[:4]), secret: s})
	}
	return r, nil
}

// For returns the ring that signs and verifies the requests to service
// and its replies: the service's own, else the app's; nil when there is
// none (messages of service are not signed).
func (k *Keys) For(service string) *Ring {
	if k == nil {
		return nil
	}
	if r := k.services[service]; r != nil {
		return r
	}
	return k.app
}

// Missing returns why this node cannot sign requests to service (it has
// a key of its own that the node could not read), or nil.
func (k *Keys) Missing(service string) error {
	if k == nil {
		return nil
	}
	return k.missing[service]
}

// Services lists the services with keys of their own.
func (k *Keys) Services() []string {
	if k == nil {
		return nil
	}
	out := make([]string, 0, len(k.services))
	for s := range k.services {
		out = append(out, s)
	}
	return out
}

// Kinds of signed messages: a request's MAC never verifies a reply.
const (
	KindRequest = 'q'
	KindReply   = 'r'
)

// Fields are what a MAC covers: every field of a message that a receiver
// acts on. A forger cannot change any of them, nor move a request to
// another service or method, nor extend its deadline, nor point its reply
// elsewhere.
type Fields struct {
	Kind     byte // KindRequest or KindReply
	Version  string
	ID       string
	Service  string
	Method   string
	Deadline string
	ReplyTo  string
	Schema   string
	Status   string
	Payload  []byte
}

// mac is a pooled HMAC-SHA256 state of one key.
type mac struct {
	h   hash.Hash
	sum [sha256.Size]byte
	buf [binary.MaxVarintLen64]byte
}

func (r *Ring) mac(k *key, pooled bool) *mac {
	if pooled {
		if m, ok := r.pool.Get().(*mac); ok {
			m.h.Reset()
			return m
		}
	}
	return &mac{h: hmac.New(sha256.New, k.secret)}
}

// write adds each field, prefixed by its length, so that no two distinct
// Fields write the same bytes.
func (m *mac) write(f *Fields) {
	m.buf[0] = f.Kind
	m.h.Write(m.buf[:1])
	for _, s := range [...]string{f.Version, f.ID, f.Service, f.Method, f.Deadline, f.ReplyTo, f.Schema, f.Status} {
		m.field(len(s))
		m.h.Write(unsafeBytes(s))
	}
	m.field(len(f.Payload))
	m.h.Write(f.Payload)
}

func (m *mac) field(n int) {
	l := binary.PutUvarint(m.buf[:], uint64(n))
	m.h.Write(m.buf[:l])
}

// SigLen is the length of a signature header's value: 8 hex digits of the
// key id, a dot, 43 characters of unpadded base64url MAC.
const SigLen = 8 + 1 + 43

// Sign appends the signature of f by the ring's signing key to dst, in
// the form a signature header carries: "<key id>.<MAC>".
func (r *Ring) Sign(dst []byte, f *Fields) []byte {
	k := &r.keys[0]
	m := r.mac(k, true)
	m.write(f)
	sum := m.h.Sum(m.sum[:0])
	dst = append(dst, k.id...)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, sum)
	r.pool.Put(m)
	return dst
}

// Errors of Verify.
var (
	ErrUnsigned  = errors.New("unsigned")
	ErrBadSig    = errors.New("malformed signature")
	ErrUnknownID = errors.New("signed with a key this node does not have")
	ErrForged    = errors.New("wrong signature")
)

// Verify checks sig, a signature header's value, against f: nil when a
// key of the ring made it over exactly these fields.
func (r *Ring) Verify(f *Fields, sig string) error {
	if sig == "" {
		return ErrUnsigned
	}
	if len(sig) != SigLen || sig[8] != '.' {
		return ErrBadSig
	}
	var want [sha256.Size]byte
	if n, err := strictBase64.Decode(want[:], unsafeBytes(sig[9:])); err != nil || n != len(want) {
		return ErrBadSig
	}
	for i := range r.keys {
		k := &r.keys[i]
		if k.id != sig[:8] {
			continue
		}
		m := r.mac(k, i == 0)
		m.write(f)
		ok := subtle.ConstantTimeCompare(m.h.Sum(m.sum[:0]), want[:]) == 1
		if i == 0 {
			r.pool.Put(m)
		}
		if ok {
			return nil
		}
		return ErrForged
	}
	return ErrUnknownID
}

// strictBase64 refuses the non-canonical spellings of a MAC (set trailing
// bits), so that one MAC has one signature text.
var strictBase64 = base64.RawURLEncoding.Strict()
