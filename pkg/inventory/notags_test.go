package inventory

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordsHaveNoWireTags: no struct of the inventory carries json or
// yaml tags, so no database field can become part of the API by accident
// (the wire types are pkg/metalapi's; the services convert).
func TestRecordsHaveNoWireTags(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	structs := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			st, ok := n.(*ast.StructType)
			if !ok {
				return true
			}
			structs++
			for _, fld := range st.Fields.List {
				if fld.Tag != nil && (strings.Contains(fld.Tag.Value, "json:") || strings.Contains(fld.Tag.Value, "yaml:")) {
					t.Errorf("%s: field tag %s: inventory records carry no wire tags (pkg/metalapi has the API's types)", fset.Position(fld.Pos()), fld.Tag.Value)
				}
			}
			return true
		})
	}
	if structs < 10 {
		t.Fatalf("found only %d structs: the check is not looking at the package", structs)
	}
}
