package kafka

import (
	"fmt"
	"strings"
	"testing"
)

// TestPartitionCommits guards the offsets a server commits for a partition:
// a commit never passes a request still running (else a crash would lose
// it: at-least-once), never repeats or goes below what was committed, and
// gaps in the offsets (compacted records, transaction markers) neither hold
// commits back nor let them pass a running request.
func TestPartitionCommits(t *testing.T) {
	// Steps: "f N" fetched N, "d N" done N, "c N" committable must be N
	// (and due), "c -" nothing due, "k N" committed N.
	cases := []struct{ name, steps string }{
		{"nothing fetched, nothing to commit", "c -"},
		{"in order", "f 0, f 1, c 0, d 0, c 1, d 1, c 2, k 2, c -"},
		{"the first request still running holds the commit back", "f 5, f 6, f 7, d 6, d 7, c 5, d 5, c 8"},
		{"out of order", "f 0, f 1, f 2, d 2, c 0, d 0, c 1, k 1, c -, d 1, c 3"},
		{"nothing new after a commit", "f 0, d 0, c 1, k 1, c -, f 1, c -, d 1, c 2"},
		{"a commit never goes back", "f 0, f 1, d 0, d 1, k 2, k 1, c -"},
		{"a gap neither holds back nor skips a running request", "f 5, d 5, f 7, c 7, d 7, c 8, k 8, f 8, f 10, d 10, c -, d 8, c 11"},
		{"the first fetch may be far from zero", "f 1000, c 1000, d 1000, c 1001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &partition{committed: -1, inflight: map[int64]bool{}}
			for i, step := range strings.Split(tc.steps, ", ") {
				var op, arg string
				fmt.Sscan(step, &op, &arg)
				var n int64
				fmt.Sscan(arg, &n)
				switch op {
				case "f":
					p.fetched(n)
				case "d":
					p.done(n)
				case "k":
					p.committedTo(n)
				case "c":
					next, due := p.committable()
					if arg == "-" {
						if due {
							t.Fatalf("step %d (%s): %d is due, want nothing", i, step, next)
						}
					} else if !due || next != n {
						t.Fatalf("step %d (%s): committable = %d, due %t", i, step, next, due)
					}
				}
			}
		})
	}
}
