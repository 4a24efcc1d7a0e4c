package load

import (
	"strings"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
)

// checkReserved reports user declarations that would clash with the
// generated file: NewXClient and RegisterX for each service, and any
// package-level name starting with "molgen".
func (l *loader) checkReserved(info *pkgInfo) {
	m := info.model
	if len(m.Services) == 0 && len(m.Constructors) == 0 && len(m.Mains) == 0 {
		return
	}
	scope := info.pkg.Types.Scope()
	for _, svc := range m.Services {
		for _, name := range []string{svc.Ref().NewClientFunc(), svc.Ref().RegisterFunc()} {
			if obj := scope.Lookup(name); obj != nil {
				l.errs.Add(position(l.fset, obj.Pos()), "%s is declared here, but molgen generates it for service %q: rename this one", name, svc.Name)
			}
		}
	}
	for _, name := range scope.Names() {
		if strings.HasPrefix(name, model.ReservedPrefix) {
			l.errs.Add(position(l.fset, scope.Lookup(name).Pos()), "%s: package-level names starting with %q are reserved for generated code", name, model.ReservedPrefix)
		}
	}
}

// reportMisplaced reports directives in comments that no rule consumed.
func (l *loader) reportMisplaced(info *pkgInfo) {
	for g, ds := range info.dirs {
		if info.used[g] {
			continue
		}
		for _, d := range ds {
			l.errs.Add(position(l.fset, d.Pos), "misplaced //molgen:%s directive: it belongs in the doc comment of %s", d.Name, directiveNames[d.Name])
		}
	}
}

// checkUnique reports duplicate service and main names and services with
// several constructors.
func (l *loader) checkUnique(infos []*pkgInfo) {
	type decl struct {
		what string
		pos  diag.Pos
	}
	names := map[string]decl{}
	ctors := map[string]diag.Pos{}
	for _, info := range infos {
		for _, s := range info.model.Services {
			if prev, dup := names[s.Name]; dup {
				l.errs.Add(s.Pos, "duplicate name %q: service %s.%s and %s at %s", s.Name, s.PkgName, s.Iface, prev.what, prev.pos.Short())
				continue
			}
			names[s.Name] = decl{"service " + s.PkgName + "." + s.Iface, s.Pos}
		}
	}
	for _, info := range infos {
		for _, m := range info.model.Mains {
			if prev, dup := names[m.Name]; dup {
				l.errs.Add(m.Pos, "duplicate name %q: main %s.%s and %s at %s", m.Name, m.PkgName, m.Func, prev.what, prev.pos.Short())
				continue
			}
			names[m.Name] = decl{"main " + m.PkgName + "." + m.Func, m.Pos}
		}
		for _, c := range info.model.Constructors {
			key := c.Service.Pkg + "." + c.Service.Iface
			if prev, dup := ctors[key]; dup {
				l.errs.Add(c.Pos, "service %s has a second constructor %s (the first is at %s); one constructor per service", c.Service.Name, c.Func, prev.Short())
				continue
			}
			ctors[key] = c.Pos
		}
	}
}
