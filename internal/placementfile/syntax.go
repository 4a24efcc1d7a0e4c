// Package placementfile loads placement files for the commands that check
// them as their author edits them (molgen check, build, graph, init): like
// placement.LoadFor, but a YAML syntax error cites the line and column of
// the offending token. gopkg.in/yaml.v3, which placement parses with, gives
// only the line where the enclosing construct starts (line 4, "nodes:", for
// a key indented one space too far on line 6) and no column; the maintained
// go.yaml.in/yaml/v3 reports the same. goccy/go-yaml's parser points at the
// token. It is used only here, to locate an error placement already found,
// so that node binaries (which parse their embedded, already checked
// placement with package placement) do not link a second YAML parser.
package placementfile

import (
	"errors"
	"strings"

	goccyparser "github.com/goccy/go-yaml/parser"
	goccytoken "github.com/goccy/go-yaml/token"
)

// locate returns the position and message of the YAML syntax error in data,
// as goccy/go-yaml's parser reports it, with a hint when the offending token
// starts a line at an indentation no earlier line has. ok is false when that
// parser finds no error (then placement's report stands).
func locate(data []byte) (line, col int, msg string, ok bool) {
	var located interface {
		GetToken() *goccytoken.Token
		GetMessage() string
	}
	if _, err := goccyparser.ParseBytes(data, 0); errors.As(err, &located) {
		if tk := located.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
			msg := strings.ReplaceAll(located.GetMessage(), "\t", `\t`)
			if misindented(data, tk.Position.Line, tk.Position.Column) {
				msg += " (check the indentation)"
			}
			return tk.Position.Line, tk.Position.Column, msg, true
		}
	}
	return 0, 0, "", false
}

// misindented reports whether the token at line:col starts its line with
// an indentation that no earlier line has.
func misindented(data []byte, line, col int) bool {
	lines := strings.Split(string(data), "\n")
	if line > len(lines) || col-1 > len(lines[line-1]) || strings.TrimLeft(lines[line-1][:col-1], " ") != "" {
		return false
	}
	for _, l := range lines[:line-1] {
		body := strings.TrimLeft(l, " ")
		if body != "" && !strings.HasPrefix(body, "#") && len(l)-len(body) == col-1 {
			return false
		}
	}
	return true
}
