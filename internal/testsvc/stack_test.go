package testsvc

import (
	"runtime"
	"testing"

	mrt "github.com/molgen/molgen/runtime"
)

// TestDecodeStackPerLevel measures the stack a level of a recursive value
// takes in generated decoders, which the runtime charges to a message's
// decode memory budget as an estimate (runtime's stackPerLevel, 128
// bytes): a chain of 8000 Trees decodes within the default budget, and its
// goroutine's stack grows by at most twice the estimate per level (stacks
// grow by doubling).
func TestDecodeStackPerLevel(t *testing.T) {
	const levels, estimate = 8000, 128
	tr := &Tree{}
	cur := tr
	for i := 1; i < levels; i++ {
		cur.Left = &Tree{}
		cur = cur.Left
	}
	e := mrt.NewEncoder(nil)
	(&molgenRequest_Codec_Tree{A0: tr}).MolgenEncode(e)
	data := e.Data()
	type result struct {
		stack uint64
		err   error
	}
	done := make(chan result)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() {
		var out molgenRequest_Codec_Tree
		d := mrt.NewDecoder(data)
		out.MolgenDecode(d)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		done <- result{ms.StackInuse, d.Finish()}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("decoding %d levels (%d bytes): %v", levels, len(data), r.err)
	}
	perLevel := (r.stack - before.StackInuse) / levels
	t.Logf("%d levels: the stack grew by about %d bytes per level", levels, perLevel)
	if perLevel > 2*estimate {
		t.Errorf("the stack grew by %d bytes per level, over twice the runtime's estimate of %d", perLevel, estimate)
	}
}
