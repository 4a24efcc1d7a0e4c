package testsvc

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	mrt "github.com/molgen/molgen/runtime"
)

// TestDecodeStackPerLevel measures the stack a level of a recursive value
// takes in generated decoders, which the runtime charges to a message's
// decode memory budget as an estimate (runtime's stackPerLevel, 128
// bytes): a chain of 8000 Trees decodes within the default budget, and its
// goroutine's stack grows by at most twice the estimate per level (stacks
// grow by doubling). The measure is taken in a process of its own (this
// test binary, run again for this test alone): in a process where other
// tests' goroutines come and go, the stack in use says nothing of one
// goroutine's.
func TestDecodeStackPerLevel(t *testing.T) {
	const levels, estimate = 8000, 128
	if os.Getenv("MOLGEN_STACK_PROBE") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDecodeStackPerLevel$", "-test.v")
		cmd.Env = append(os.Environ(), "MOLGEN_STACK_PROBE=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the measuring process failed: %v\n%s", err, out)
		}
		i := strings.Index(string(out), "stack grew by about ")
		if i < 0 {
			t.Fatalf("no measure in:\n%s", out)
		}
		n, _ := strconv.Atoi(strings.Fields(string(out)[i+len("stack grew by about "):])[0])
		t.Logf("%d levels: the stack grew by about %d bytes per level", levels, n)
		if n <= 0 || n > 2*estimate {
			t.Errorf("the stack grew by %d bytes per level, over twice the runtime's estimate of %d", n, estimate)
		}
		return
	}
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
	t.Logf("stack grew by about %d bytes per level", (int64(r.stack)-int64(before.StackInuse))/levels)
}
