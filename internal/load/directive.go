package load

import (
	"fmt"
	"go/ast"
	"go/token"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/suggest"
	"github.com/molgen/molgen/runtime/placement"
)

// directive is one //molgen:NAME [args] line.
type directive struct {
	Name string
	Args []string
	Pos  token.Pos
	Text string // the whole comment line, for messages
}

// directiveNames lists every directive and where it belongs.
var directiveNames = map[string]string{
	"service":     "an interface type declaration",
	"constructor": "a func declaration",
	"main":        "a func declaration",
	"timeout":     "a method of a //molgen:service interface",
	"retry":       "a method of a //molgen:service interface",
	"oneway":      "a method of a //molgen:service interface",
}

const prefix = "//molgen:"

// nearDirective matches comments that look like a directive but are not
// one, because of a space after // or capitals in "molgen":
// "// molgen:service", "//Molgen:timeout 2s", "//MOLGEN:oneway".
var nearDirective = regexp.MustCompile(`(?i)^//(\s*)molgen:(\S*)`)

// scanFile finds every //molgen: line in f's comments, keyed by the comment
// group holding it, and reports malformed lines. A line that is not a
// directive but is near one (a misspelt name, a space after //, capitals)
// is reported with a "did you mean" and then taken as the directive meant,
// so that what follows from it is checked as the author intended instead of
// adding errors that only follow from the misspelling; guessed records
// where that was done.
func scanFile(fset *token.FileSet, f *ast.File, errs *diag.List, guessed map[token.Pos]bool) map[*ast.CommentGroup][]directive {
	out := map[*ast.CommentGroup][]directive{}
	names := slices.Collect(maps.Keys(directiveNames))
	for _, g := range f.Comments {
		for _, c := range g.List {
			var rest string
			if r, ok := strings.CutPrefix(c.Text, prefix); ok {
				rest = r
			} else if m := nearDirective.FindStringSubmatch(c.Text); m != nil {
				spaced, name := m[1] != "", strings.ToLower(m[2])
				lower := m[2] == name && strings.HasPrefix(strings.TrimLeft(c.Text[2:], " \t"), "molgen:")
				meant := name
				if _, known := directiveNames[name]; !known {
					meant = suggest.Closest(name, names)
				}
				switch {
				case meant == "" && spaced:
					continue // prose, such as "// molgen: the tool"
				case meant == name && spaced && lower:
					errs.Add(position(fset, c.Pos()), "%q is not a directive: write //molgen:%s with no space after //", c.Text, name)
				default:
					var why []string
					if spaced {
						why = append(why, "with no space after //")
					}
					if !lower {
						why = append(why, "in lower case")
					}
					msg := fmt.Sprintf("%q is not a directive: directives are written //molgen:NAME %s", c.Text, strings.Join(why, " and "))
					if meant != "" {
						msg += fmt.Sprintf(" (did you mean %s%s?)", prefix, meant)
					}
					errs.Add(position(fset, c.Pos()), "%s", msg)
				}
				if meant == "" {
					continue
				}
				guessed[c.Pos()] = true
				rest = meant + c.Text[len(m[0]):]
			} else {
				continue
			}
			fields := strings.Fields(rest)
			d := directive{Pos: c.Pos(), Text: c.Text}
			if len(fields) > 0 {
				d.Name, d.Args = fields[0], fields[1:]
			}
			if _, known := directiveNames[d.Name]; !known {
				msg := fmt.Sprintf("unknown directive %s", strings.TrimSpace(prefix+d.Name))
				s := suggest.Closest(strings.ToLower(d.Name), names)
				if s != "" {
					msg += fmt.Sprintf(" (did you mean %s%s?)", prefix, s)
				}
				errs.Add(position(fset, c.Pos()), "%s", msg)
				if s == "" {
					continue
				}
				guessed[c.Pos()] = true
				d.Name = s
			}
			out[g] = append(out[g], d)
		}
	}
	return out
}

// nameRE is the form of service and main names, as placement files check
// them; nameForm is that form as messages show it.
var (
	nameRE   = regexp.MustCompile(placement.NamePattern)
	nameForm = strings.TrimSuffix(strings.TrimPrefix(placement.NamePattern, "^"), "$")
)

// parseNameArg reads the optional "name=N" argument of service and main.
func parseNameArg(fset *token.FileSet, d directive, errs *diag.List) (string, bool) {
	name := ""
	ok := true
	for _, a := range d.Args {
		v, found := strings.CutPrefix(a, "name=")
		if !found {
			errs.Add(position(fset, d.Pos), "//molgen:%s: unknown argument %q (the only argument is name=N)", d.Name, a)
			ok = false
			continue
		}
		if name != "" {
			errs.Add(position(fset, d.Pos), "//molgen:%s: name given twice", d.Name)
			ok = false
			continue
		}
		if !nameRE.MatchString(v) {
			errs.Add(position(fset, d.Pos), "//molgen:%s: invalid name %q: names match %s", d.Name, v, nameForm)
			ok = false
			continue
		}
		name = v
	}
	return name, ok
}

// methodOptions are the directives of one service method.
type methodOptions struct {
	Timeout time.Duration
	Retry   int
	Oneway  bool
}

// parseMethodDirectives reads timeout, retry and oneway; anything else on a
// method is misplaced.
func parseMethodDirectives(fset *token.FileSet, ds []directive, errs *diag.List) methodOptions {
	var o methodOptions
	seen := map[string]bool{}
	for _, d := range ds {
		pos := position(fset, d.Pos)
		if seen[d.Name] {
			errs.Add(pos, "duplicate //molgen:%s directive", d.Name)
			continue
		}
		seen[d.Name] = true
		switch d.Name {
		case "timeout":
			if len(d.Args) != 1 {
				errs.Add(pos, "//molgen:timeout takes one duration, e.g. //molgen:timeout 2s")
				continue
			}
			dur, err := time.ParseDuration(d.Args[0])
			if err != nil {
				errs.Add(pos, "//molgen:timeout: invalid duration %q (use Go syntax such as 500ms, 2s or 1m)", d.Args[0])
				continue
			}
			if dur <= 0 {
				errs.Add(pos, "//molgen:timeout: duration must be positive, got %s", d.Args[0])
				continue
			}
			o.Timeout = dur
		case "retry":
			if len(d.Args) != 1 {
				errs.Add(pos, "//molgen:retry takes one count, e.g. //molgen:retry 2")
				continue
			}
			n, err := strconv.Atoi(d.Args[0])
			if err != nil || n < 1 || n > 100 {
				errs.Add(pos, "//molgen:retry: invalid count %q (an integer from 1 to 100)", d.Args[0])
				continue
			}
			o.Retry = n
		case "oneway":
			if len(d.Args) != 0 {
				errs.Add(pos, "//molgen:oneway takes no arguments")
				continue
			}
			o.Oneway = true
		default:
			errs.Add(pos, "misplaced //molgen:%s directive: it belongs on %s", d.Name, directiveNames[d.Name])
		}
	}
	if o.Oneway && o.Retry > 0 {
		for _, d := range ds {
			if d.Name == "retry" {
				errs.Add(position(fset, d.Pos), "//molgen:retry has no effect on a //molgen:oneway method, which awaits no reply")
			}
		}
		o.Retry = 0
	}
	return o
}

// typeDoc is a type declaration's doc comment: the spec's, or that of its
// declaration when it declares only this type.
func typeDoc(gd *ast.GenDecl, ts *ast.TypeSpec) *ast.CommentGroup {
	if ts.Doc == nil && len(gd.Specs) == 1 {
		return gd.Doc
	}
	return ts.Doc
}

// docText returns a doc comment's text without molgen directives.
func docText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	var lines []string
	for _, line := range strings.Split(g.Text(), "\n") {
		if !strings.HasPrefix(line, "molgen:") {
			lines = append(lines, line)
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
