package load

import (
	"go/token"
	"go/types"

	"github.com/molgen/molgen/internal/diag"
)

// position is pos as messages show it.
func position(fset *token.FileSet, pos token.Pos) diag.Pos {
	p := fset.Position(pos)
	return diag.Pos{File: p.Filename, Line: p.Line, Col: p.Column}
}

// varPos is where v is declared, or fallback when export data did not
// keep its position.
func (l *loader) varPos(v *types.Var, fallback diag.Pos) diag.Pos {
	if v.Pos().IsValid() {
		return position(l.fset, v.Pos())
	}
	return fallback
}
