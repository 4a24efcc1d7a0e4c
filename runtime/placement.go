package runtime

import "github.com/molgen/molgen/runtime/placement"

// Placement is a parsed placement file (see package placement): which
// services and mains run on which node, and how nodes reach Kafka.
type Placement = placement.Placement

// PlacementError lists every problem of a placement file, each as
// "file:line:col: message".
type PlacementError = placement.Error

// LoadPlacement reads and checks a placement file. Errors cite the file's
// lines: "placement.yaml:7:10: node \"core\" is empty".
func LoadPlacement(path string) (*Placement, error) { return placement.Load(path) }

// ParsePlacement parses a placement file's content; file names it in errors.
func ParsePlacement(file string, data []byte) (*Placement, error) { return placement.Parse(file, data) }
