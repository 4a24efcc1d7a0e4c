package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryMutantApplies: each mutant's text occurs exactly once in its
// file, so that a change to the code cannot quietly turn a mutant into a
// no-op (the runner would report it killed by a build failure, or find
// nothing to replace).
func TestEveryMutantApplies(t *testing.T) {
	names := map[string]bool{}
	for _, m := range mutants {
		if names[m.name] {
			t.Errorf("two mutants are named %s", m.name)
		}
		names[m.name] = true
		b, err := os.ReadFile(filepath.Join("..", "..", m.file))
		if err != nil {
			t.Errorf("%s: %v", m.name, err)
			continue
		}
		if n := strings.Count(string(b), m.from); n != 1 {
			t.Errorf("%s: its text occurs %d times in %s, want once", m.name, n, m.file)
		}
		if m.from == m.to {
			t.Errorf("%s changes nothing", m.name)
		}
	}
}
