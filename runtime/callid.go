package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// CallID returns the id of the remote call that ctx serves: the same for
// every copy of the call's request that reaches a server (a //molgen:retry
// resend, a write the producer retried, a request redelivered after an
// instance died), so that an implementation can make its effects happen
// once: store the id with the effect, in the same database transaction,
// under a unique constraint, and treat a conflict as "done already".
//
// Local calls made while serving a remote call (the same ctx, or one
// derived from it) see that call's id: they run again exactly when it
// does, and their effects deduplicate with it; key such effects by the id
// and what they are (the id alone is shared). Outside a remote call — a
// node's main, a monolith's local calls — molgen never runs a call twice,
// and CallID returns a new unique id each time it is asked: ask once per
// effect.
func CallID(ctx context.Context) string {
	if id, ok := ctx.Value(transport.CallIDKey{}).(string); ok && id != "" {
		return id
	}
	return localCallID()
}

// localSession tells this process's local call ids from every other's.
var localSession = func() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "local-" + hex.EncodeToString(b[:]) + "."
}()

var localCalls atomic.Uint64

func localCallID() string {
	return localSession + strconv.FormatUint(localCalls.Add(1), 10)
}
