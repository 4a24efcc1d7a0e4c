//go:build unix

package nodemain

import (
	"os"
	"syscall"
)

// profileSignals are the signals that make a node write its profile.
func profileSignals() []os.Signal { return []os.Signal{syscall.SIGUSR1} }
