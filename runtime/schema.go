package runtime

import (
	"errors"
	"fmt"
	"sync"

	"github.com/molgen/molgen/runtime/schema"
)

// A method's schema is the shape of its arguments and results, as
// docs/WIRE.md writes it: "(P1,P2,…)(R1,R2,…)", with basic kinds by name,
// bytes, time, [N]T, []T, map[K]V, *T, {F1,F2,…} for a struct's field
// types in order, bin(path.Name) for a BinaryMarshaler and @k for a
// recursive reference. Requests carry the caller's schema and replies the
// server's; two schemas are compatible when they are equal except that a
// struct of one may have more trailing fields than the same struct of the
// other (fields appended by a newer version). See compatibleSchemas.

// verdicts caches compatibleSchemas by pair: a node meets few schemas
// other than its own. It is bounded, since schemas come from the network:
// pairs longer than verdictTextMax together are not kept, and once
// verdictsMax pairs are, an arbitrary one makes room for the next. So the
// cache holds at most verdictsMax*(verdictTextMax+an error's text) bytes,
// about 1.2 MB, whatever peers send.
var verdicts = struct {
	sync.RWMutex
	m map[[2]string]error
}{m: map[[2]string]error{}}

const (
	verdictsMax    = 256
	verdictTextMax = 4 << 10
)

// compatibleSchemas reports whether values written for a method of schema
// a can be read for schema b (and so the reverse): nil when they can,
// otherwise an error saying where they differ, such as
// "parameter 0: field 2: int vs string". A schema that is not valid (or
// over schema.MaxLen, or nesting deeper than schema.MaxDepth) is an error
// matching ErrBadRequest.
func compatibleSchemas(a, b string) error {
	if a == b {
		return nil
	}
	key := [2]string{a, b}
	verdicts.RLock()
	err, ok := verdicts.m[key]
	verdicts.RUnlock()
	if ok {
		return err
	}
	err = schema.CompatibleText(a, b)
	if errors.Is(err, schema.ErrInvalid) {
		err = fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if len(a)+len(b) <= verdictTextMax {
		verdicts.Lock()
		if len(verdicts.m) >= verdictsMax {
			for k := range verdicts.m {
				delete(verdicts.m, k)
				break
			}
		}
		verdicts.m[key] = err
		verdicts.Unlock()
	}
	return err
}

// shortSchema is what an error message quotes of a schema that came from
// the network: at most 120 bytes of it.
func shortSchema(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:120] + "…"
}
