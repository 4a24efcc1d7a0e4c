//go:build !unix

package nodemain

import "os"

// profileSignals: no SIGUSR1 here; the profile is written on exit only.
func profileSignals() []os.Signal { return nil }
