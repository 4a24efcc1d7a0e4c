// Package apiversion holds the version of the contract between the code
// that molgen generates and package runtime. It is a package of its own so
// that the generator can read it without linking the runtime (and Kafka).
package apiversion

// Current is the runtime API version. Bump it when generated code written
// for the previous version would no longer compile or behave correctly with
// the runtime: such files then fail to build with a message saying to
// re-run 'molgen generate'.
const Current = 4
