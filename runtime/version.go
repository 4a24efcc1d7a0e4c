package runtime

import "github.com/molgen/molgen/runtime/apiversion"

// APIVersion is the version of the contract between generated code and this
// package. Generated files assert it at compile time, so a file made by an
// incompatible molgen fails to build with a message saying what to do.
const APIVersion = apiversion.Current

// Version is the type of the compile-time version assertion in generated
// code; its type argument carries the version.
type Version[_ any] string

// LatestVersion is the Version generated code must match: a file generated
// for another API version fails to compile with
//
//	cannot use runtime.Version[[0][N]struct{}]("...re-run molgen generate...") as runtime.LatestVersion value
type LatestVersion = Version[[0][APIVersion]struct{}]
