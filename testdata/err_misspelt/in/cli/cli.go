// Package cli calls the greeter whose directive is misspelt.
package cli

import (
	"context"

	"example.com/err_misspelt/greeter"
)

// Hello greets.
//
//molgen:main
func Hello(ctx context.Context, g greeter.Greeter) error {
	_, err := g.Hello(ctx, "world")
	return err
}
