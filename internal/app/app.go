// Package app assembles the packages of one application into a whole: every
// service with its constructor, every main, and the static call graph that
// constructor and main dependencies define. Build, check and graph share it.
package app

import (
	"maps"
	"slices"
	"sort"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
)

// App is a whole application.
type App struct {
	Services     map[string]*model.Service     // by service name
	Constructors map[string]*model.Constructor // by service name
	Mains        map[string]*model.Main        // by main name
	Module       string
	ModuleDir    string
}

// Edge is a static call: From (a service or main) depends on service To.
type Edge struct {
	From, To string
	FromMain bool
}

// New checks that prog is a complete application: every service has a
// constructor and every dependency is a service of the app.
func New(prog *model.Program) (*App, error) {
	a := &App{
		Services:     map[string]*model.Service{},
		Constructors: map[string]*model.Constructor{},
		Mains:        map[string]*model.Main{},
		Module:       prog.Module,
		ModuleDir:    prog.ModuleDir,
	}
	var errs diag.List
	for _, p := range prog.Packages {
		for _, s := range p.Services {
			a.Services[s.Name] = s
		}
		for _, m := range p.Mains {
			a.Mains[m.Name] = m
		}
	}
	for _, p := range prog.Packages {
		for _, c := range p.Constructors {
			if _, ok := a.Services[c.Service.Name]; !ok {
				errs.Add(c.Pos, "%s constructs service %q (%s.%s), whose package is not among the packages loaded; add it to the package patterns",
					c.Func, c.Service.Name, c.Service.PkgName, c.Service.Iface)
				continue
			}
			a.Constructors[c.Service.Name] = c
			checkDeps(a, &errs, c.Func, c.Pos, c.Deps)
		}
		for _, m := range p.Mains {
			checkDeps(a, &errs, m.Func, m.Pos, m.Deps)
		}
	}
	for _, name := range a.ServiceNames() {
		if a.Constructors[name] == nil {
			s := a.Services[name]
			errs.Add(s.Pos, "service %q (%s) has no //molgen:constructor among the packages loaded; add a func annotated //molgen:constructor that returns %s",
				name, s.Iface, s.Iface)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return a, nil
}

func checkDeps(a *App, errs *diag.List, fn string, pos diag.Pos, deps []model.Ref) {
	for _, d := range deps {
		if _, ok := a.Services[d.Name]; !ok {
			errs.Add(pos, "%s depends on service %q (%s.%s), whose package is not among the packages loaded; add it to the package patterns",
				fn, d.Name, d.PkgName, d.Iface)
		}
	}
}

// ServiceNames returns the service names, sorted.
func (a *App) ServiceNames() []string { return slices.Sorted(maps.Keys(a.Services)) }

// MainNames returns the main names, sorted.
func (a *App) MainNames() []string { return slices.Sorted(maps.Keys(a.Mains)) }

// Edges returns the static call graph, sorted, without duplicates.
func (a *App) Edges() []Edge {
	seen := map[Edge]bool{}
	var out []Edge
	add := func(e Edge) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, name := range a.ServiceNames() {
		if c := a.Constructors[name]; c != nil {
			for _, d := range c.Deps {
				add(Edge{From: name, To: d.Name})
			}
		}
	}
	for _, name := range a.MainNames() {
		for _, d := range a.Mains[name].Deps {
			add(Edge{From: name, To: d.Name, FromMain: true})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].FromMain != out[j].FromMain {
			return !out[i].FromMain
		}
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}
