package session

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestServerUsesOnlyFsjail keeps the server side of the session on fsjail
// for every access to a user's files: the files that handle client
// requests may not call os or path/filepath functions that take a path.
// (server.go joins only validated user names to trusted config, and the
// client_*.go files work on the client's own machine.)
func TestServerUsesOnlyFsjail(t *testing.T) {
	t.Parallel()
	forbidden := map[string]map[string]bool{
		"os": {"Open": true, "OpenFile": true, "Create": true, "CreateTemp": true, "Remove": true, "RemoveAll": true,
			"Rename": true, "Mkdir": true, "MkdirAll": true, "Stat": true, "Lstat": true, "ReadDir": true, "ReadFile": true,
			"WriteFile": true, "Chtimes": true, "Chmod": true, "Link": true, "Symlink": true, "Readlink": true, "OpenRoot": true},
		"filepath": {"Join": true, "Abs": true, "EvalSymlinks": true, "Walk": true, "WalkDir": true, "Glob": true},
	}
	for _, file := range []string{"conn.go", "control.go", "transfer.go", "errors.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && forbidden[pkg.Name][sel.Sel.Name] {
				t.Errorf("%s: %s.%s bypasses fsjail", file, pkg.Name, sel.Sel.Name)
			}
			return true
		})
	}
}
