package placementfile

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/molgen/molgen/runtime/placement"
)

// syntaxPrefix starts the message of placement's problem for a file that
// is not valid YAML (it stops there: no other problem is reported).
const syntaxPrefix = "invalid YAML: "

// Load reads the placement file at path and validates it against the
// app's service and main names, reporting every problem at once, each as
// "file:line:col: message" (a *placement.Error).
func Load(path string, services, mains []string) (*placement.Placement, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("molgen: reading placement: %w", err)
	}
	return Check(path, data, services, mains)
}

// Check is Load for a file's content; file names it in errors.
func Check(file string, data []byte, services, mains []string) (*placement.Placement, error) {
	p, err := placement.Check(file, data, services, mains)
	var perr *placement.Error
	if err == nil || !errors.As(err, &perr) {
		return p, err
	}
	for i, pr := range perr.Problems {
		if !strings.HasPrefix(pr.Msg, syntaxPrefix) {
			continue
		}
		if line, col, msg, ok := locate(data); ok {
			perr.Problems[i] = placement.Problem{Line: line, Col: col, Msg: syntaxPrefix + msg}
		}
	}
	return nil, perr
}
