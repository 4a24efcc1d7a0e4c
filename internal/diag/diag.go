// Package diag holds positioned diagnostics: the errors molgen reports as
// "file:line:col: message", collected so that one run reports all of them.
package diag

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Pos is a position in a source file. File is an absolute path; Line and
// Col count from 1. The zero Pos means "no position".
type Pos struct {
	File      string
	Line, Col int
}

// IsValid reports whether p names a file.
func (p Pos) IsValid() bool { return p.File != "" }

// String formats p as "file:line:col" with file relative to the working
// directory, the way compilers print positions.
func (p Pos) String() string {
	if !p.IsValid() {
		return "-"
	}
	file := Rel(p.File)
	switch {
	case p.Line == 0:
		return file
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", file, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}

// Short formats p as "file.go:line:col" with the file's base name only, for
// messages that point at a second position.
func (p Pos) Short() string {
	if !p.IsValid() {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", filepath.Base(p.File), p.Line, p.Col)
}

// Rel returns path relative to the working directory when that is possible,
// and path unchanged otherwise.
func Rel(path string) string {
	if !filepath.IsAbs(path) {
		return path
	}
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil {
		return path
	}
	return rel
}

// Error is one diagnostic.
type Error struct {
	Pos Pos
	Msg string
}

// Error formats e as "file:line:col: message".
func (e *Error) Error() string {
	if !e.Pos.IsValid() {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// List collects diagnostics. Its zero value is ready to use.
type List struct {
	errs []*Error
}

// Add records a diagnostic at pos.
func (l *List) Add(pos Pos, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// Drop removes the diagnostics recorded so far for which drop returns true.
func (l *List) Drop(drop func(*Error) bool) {
	l.errs = slices.DeleteFunc(l.errs, drop)
}

// Len reports how many diagnostics were recorded.
func (l *List) Len() int { return len(l.errs) }

// Err returns nil when nothing was recorded, and otherwise an error holding
// every diagnostic, sorted by position and without duplicates.
func (l *List) Err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := slices.Clone(l.errs)
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	errs = slices.CompactFunc(errs, func(a, b *Error) bool { return *a == *b })
	return Errors(errs)
}

// Errors is a sorted list of diagnostics; Error prints one per line.
type Errors []*Error

// Error prints one diagnostic per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes the individual diagnostics to errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// FormatRelative prints es one per line with file names relative to base
// (not the working directory): the form golden files record.
func (es Errors) FormatRelative(base string) string {
	var b strings.Builder
	for _, e := range es {
		p := e.Pos
		if rel, err := filepath.Rel(base, p.File); err == nil {
			p.File = filepath.ToSlash(rel)
		}
		if p.IsValid() {
			fmt.Fprintf(&b, "%s:%d:%d: %s\n", p.File, p.Line, p.Col, e.Msg)
		} else {
			fmt.Fprintf(&b, "%s\n", e.Msg)
		}
	}
	return b.String()
}
