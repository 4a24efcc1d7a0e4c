package kafka

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// tkCommit is what a test expects committable to report for a partition:
// the offset to commit (the next one to read).
type tkCommit struct {
	partition int
	next      int64
}

func (c tkCommit) String() string { return fmt.Sprintf("p%d@%d", c.partition, c.next) }

type tkOp int

const (
	tkOpStart     tkOp = iota // the fetch loop hands over the request at part/off
	tkOpDone                  // the request at part/off is answered
	tkOpCheck                 // committable() must report exactly want
	tkOpCommit                // committed() for every commit check number ref reported
	tkOpRebalance             // the group rebalances (the next start is told so)
)

type tkStep struct {
	op   tkOp
	part int
	off  int64
	want []tkCommit
	ref  int // tkOpCommit: which tkOpCheck (0-based), -1 for the latest
}

func tkStart(part int, off int64) tkStep { return tkStep{op: tkOpStart, part: part, off: off} }
func tkDone(part int, off int64) tkStep  { return tkStep{op: tkOpDone, part: part, off: off} }

// tkRebalance is a rebalance of the group, which the tracker learns of when
// a fetch does not follow the previous one.
func tkRebalance() tkStep { return tkStep{op: tkOpRebalance} }

// tkCheck expects committable to report want, in partition order; no want
// means nothing is due.
func tkCheck(want ...tkCommit) tkStep { return tkStep{op: tkOpCheck, want: want} }

// tkCommitLast records as committed what the latest check reported.
func tkCommitLast() tkStep { return tkStep{op: tkOpCommit, ref: -1} }

// tkCommitOf records as committed what check number i (0-based) reported,
// as a commit that was in flight while later steps happened would.
func tkCommitOf(i int) tkStep { return tkStep{op: tkOpCommit, ref: i} }

func tkAt(part int, next int64) tkCommit { return tkCommit{part, next} }

// TestOffsetTracker guards the offsets a server commits: a commit must
// never pass a request of the current session that is still running (else
// a crash loses it: at-least-once), must never repeat or go below what this
// member already committed, must keep a partition due when something
// changed while a commit was in flight, and must treat a fetch that goes
// back, or skips ahead across a rebalance, as a new session whose older
// requests no longer hold commits back, while a gap in the offsets with no
// rebalance keeps the session (its running requests still hold commits).
func TestOffsetTracker(t *testing.T) {
	cases := []struct {
		name  string
		steps []tkStep
	}{
		{
			name: "commits only up to the first request still running",
			steps: []tkStep{
				tkStart(0, 10), tkStart(0, 11), tkStart(0, 12),
				tkDone(0, 11), tkDone(0, 12),
				tkCheck(tkAt(0, 10)), // 10 runs: 11 and 12 are done but may not be committed
				tkCommitLast(),
				tkCheck(),
				tkDone(0, 10),
				tkCheck(tkAt(0, 13)),
				tkCommitLast(),
				tkCheck(),
			},
		},
		{
			name: "requests finishing out of order",
			steps: []tkStep{
				tkStart(0, 0), tkStart(0, 1), tkStart(0, 2), tkStart(0, 3),
				tkDone(0, 2),
				tkCheck(tkAt(0, 0)),
				tkCommitLast(),
				tkDone(0, 0),
				tkCheck(tkAt(0, 1)), // 1 still runs
				tkCommitLast(),
				tkDone(0, 3),
				tkCheck(), // 1 still runs: 1 is already committed, nothing new
				tkDone(0, 1),
				tkCheck(tkAt(0, 4)),
				tkCommitLast(),
				tkCheck(),
			},
		},
		{
			name: "partitions are independent and reported in order",
			steps: []tkStep{
				tkStart(2, 7), tkStart(1, 0), tkStart(0, 5), tkStart(0, 6),
				tkDone(0, 5), tkDone(2, 7),
				tkCheck(tkAt(0, 6), tkAt(1, 0), tkAt(2, 8)),
				tkCommitLast(),
				tkDone(1, 0),
				tkCheck(tkAt(1, 1)), // 0 and 2 have nothing new
				tkCommitLast(),
				tkDone(0, 6),
				tkCheck(tkAt(0, 7)),
				tkCommitLast(),
				tkCheck(),
			},
		},
		{
			name: "a failed commit is reported again",
			steps: []tkStep{
				tkStart(0, 0), tkDone(0, 0),
				tkCheck(tkAt(0, 1)),
				// no committed(): the commit failed
				tkCheck(tkAt(0, 1)),
				tkCommitLast(),
				tkCheck(),
			},
		},
		{
			name: "nothing is reported when nothing changed",
			steps: []tkStep{
				tkStart(0, 0), tkStart(0, 1), tkDone(0, 0), tkDone(0, 1),
				tkCheck(tkAt(0, 2)),
				tkCommitLast(),
				tkCheck(),
				tkCheck(),
				tkStart(0, 2), // starting a request frees nothing
				tkCheck(),
				tkDone(0, 2),
				tkCheck(tkAt(0, 3)),
			},
		},
		{
			name: "changes while a commit was in flight keep the partition due",
			steps: []tkStep{
				tkStart(0, 0), tkStart(0, 1), tkDone(0, 0),
				tkCheck(tkAt(0, 1)), // check 0
				tkDone(0, 1),        // while check 0's commit is in flight
				tkCommitOf(0),
				tkCheck(tkAt(0, 2)),
				tkCommitLast(),
				tkCheck(),
			},
		},
		{
			name: "a late confirmation of an older commit does not move committed back",
			steps: []tkStep{
				tkStart(0, 0), tkStart(0, 1), tkStart(0, 2),
				tkDone(0, 0),
				tkCheck(tkAt(0, 1)), // check 0
				tkDone(0, 1),
				tkCheck(tkAt(0, 2)), // check 1
				tkCommitOf(1),
				tkCommitOf(0), // confirmed after check 1's commit
				tkCheck(),     // 2 still runs, 2 is committed: nothing to report
				tkDone(0, 2),
				tkCheck(tkAt(0, 3)),
			},
		},
		{
			name: "a rebalance starts a new session: older requests no longer hold commits back",
			steps: []tkStep{
				tkStart(0, 5), tkStart(0, 6), tkStart(0, 7),
				tkDone(0, 6), tkDone(0, 7),
				tkCheck(tkAt(0, 5)),
				tkCommitLast(),
				// The partition comes back after others served it up to 20;
				// request 5 of the old session still runs here.
				tkRebalance(),
				tkStart(0, 20),
				tkCheck(tkAt(0, 20)),
				tkDone(0, 20),
				tkCheck(tkAt(0, 21)),
				tkCommitLast(),
				tkDone(0, 5), // the old session's request ends: nothing to commit
				tkCheck(),
			},
		},
		{
			name: "a rebalance resets committed: a lower offset is reported again",
			steps: []tkStep{
				tkStart(0, 0), tkStart(0, 1), tkStart(0, 2),
				tkDone(0, 0), tkDone(0, 1), tkDone(0, 2),
				tkCheck(tkAt(0, 3)),
				tkCommitLast(),
				// Fetching resumes at 1 (the group's committed offset is
				// lower than this member's): a new session, whose commits
				// start over (commit() checks the group's offset before
				// committing, so it does not go backwards).
				tkStart(0, 1),
				tkCheck(tkAt(0, 1)),
				tkCommitLast(),
				tkCheck(),
				tkDone(0, 1),
				tkCheck(tkAt(0, 2)),
			},
		},
		{
			name: "a fetch that follows the previous one stays in the session",
			steps: []tkStep{
				tkStart(0, 0), tkStart(0, 1), tkDone(0, 1),
				tkCheck(tkAt(0, 0)),
				tkCommitLast(),
				tkStart(0, 2), // follows 1: 0 still holds commits back
				tkDone(0, 2),
				tkCheck(),
				tkDone(0, 0),
				tkCheck(tkAt(0, 3)),
			},
		},
		{
			name: "a gap in the offsets without a rebalance stays in the session",
			steps: []tkStep{
				tkStart(0, 5), tkDone(0, 5),
				tkStart(0, 7), // 6 is never fetched (compacted, or a transaction marker)
				tkCheck(tkAt(0, 7)),
				tkDone(0, 7),
				tkCheck(tkAt(0, 8)), // not stuck at 6
				tkCommitLast(),
				tkStart(0, 8), tkStart(0, 10), // 10 skips 9
				tkDone(0, 10),
				tkCheck(), // 8 still runs: it holds the commit back
				tkDone(0, 8),
				tkCheck(tkAt(0, 11)),
			},
		},
		{
			name: "a rebalance is remembered until a fetch skips",
			steps: []tkStep{
				tkStart(0, 0),
				tkRebalance(), // the partition stays: fetching goes on at 1
				tkStart(0, 1),
				tkDone(0, 1),
				tkCheck(tkAt(0, 0)), // 0 still runs
				tkStart(0, 5),       // a skip after the rebalance: a new session
				tkDone(0, 5),
				tkCheck(tkAt(0, 6)),
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := &offsetTracker{parts: map[int]*partitionOffsets{}}
			rebalances := 0
			rebalanced := func() bool {
				r := rebalances > 0
				rebalances = 0
				return r
			}
			var reported [][]partitionCommit
			var trace []string
			for i, s := range c.steps {
				switch s.op {
				case tkOpStart:
					tr.start(s.part, s.off, rebalanced)
					trace = append(trace, fmt.Sprintf("start p%d@%d", s.part, s.off))
				case tkOpRebalance:
					rebalances++
					trace = append(trace, "rebalance")
				case tkOpDone:
					tr.done(s.part, s.off)
					trace = append(trace, fmt.Sprintf("done p%d@%d", s.part, s.off))
				case tkOpCheck:
					got := tr.committable()
					reported = append(reported, got)
					var gotAt []tkCommit
					for _, g := range got {
						gotAt = append(gotAt, tkAt(g.partition, g.next))
					}
					if !reflect.DeepEqual(gotAt, s.want) {
						t.Fatalf("step %d: committable() = %v, want %v\nafter: %s", i, gotAt, s.want, strings.Join(trace, ", "))
					}
					trace = append(trace, fmt.Sprintf("check %v", gotAt))
				case tkOpCommit:
					ref := s.ref
					if ref < 0 {
						ref = len(reported) - 1
					}
					for _, pc := range reported[ref] {
						tr.committed(pc)
					}
					trace = append(trace, fmt.Sprintf("commit of check %d", ref))
				}
			}
		})
	}
}

// TestOffsetTrackerCommittedUnknownPartition guards committed() against a
// commit for a partition the tracker never saw (it must not panic).
func TestOffsetTrackerCommittedUnknownPartition(t *testing.T) {
	tr := &offsetTracker{parts: map[int]*partitionOffsets{}}
	tr.committed(partitionCommit{partition: 3, next: 10, changes: 1})
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("committable() = %v after a commit of an unknown partition, want nothing", got)
	}
}
