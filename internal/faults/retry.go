package main

import (
	"fmt"

	"github.com/molgen/molgen/internal/load"
)

// loadMethods are the methods of Calc the load calls.
var loadMethods = []string{"Concat", "Where"}

// checkNoRetry checks that none of methods (of service calc in
// internal/testsvc; the load's by default) has //molgen:retry: a retried
// call resends its request with the same molgen-id on purpose, and the
// cluster scenarios count a request id written twice as a write the
// producer duplicated.
func checkNoRetry(root string, methods ...string) error {
	if len(methods) == 0 {
		methods = loadMethods
	}
	prog, err := load.Load(load.Config{Dir: root, Patterns: []string{"./internal/testsvc"}})
	if err != nil {
		return err
	}
	found := map[string]bool{}
	for _, pkg := range prog.Packages {
		for _, svc := range pkg.Services {
			if svc.Name != "calc" {
				continue
			}
			for _, m := range svc.Methods {
				for _, want := range methods {
					if m.Name != want {
						continue
					}
					found[want] = true
					if m.Retry > 0 {
						return fmt.Errorf("calc.%s has //molgen:retry %d: its resends share a request id, which the suite would count as duplicated writes; the load must call methods without retry", m.Name, m.Retry)
					}
				}
			}
		}
	}
	for _, want := range methods {
		if !found[want] {
			return fmt.Errorf("internal/testsvc has no method calc.%s", want)
		}
	}
	return nil
}
