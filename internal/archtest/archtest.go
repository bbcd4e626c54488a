// Package archtest enforces the import direction written in
// ARCHITECTURE.md: pkg/* libraries stay independent of each other and of
// internal/ and cmd/; internal/* never imports cmd/; what ships never
// imports the test support under test/.
package archtest

import (
	"fmt"
	"strings"
)

// Module is the project's module path.
const Module = "github.com/metal-iaas/metal"

// allowed lists, for each pkg/* package, the other project packages it may
// import (its own subpackages are always allowed). It mirrors the table in
// ARCHITECTURE.md.
var allowed = map[string][]string{
	"pkg/pxe": {"pkg/dhcp"},
}

// demo lists the commands that drive the lab (test/lab) rather than ship.
var demo = map[string]bool{"cmd/metal-demo": true}

// leaf packages import no project package at all.
var leaf = []string{"ipxe", "templates"}

// Check returns every import of pkg (both relative to the module) that the
// architecture forbids.
func Check(pkg string, imports []string) []string {
	var bad []string
	for _, imp := range imports {
		if !strings.HasPrefix(imp, Module+"/") {
			continue
		}
		rel := strings.TrimPrefix(imp, Module+"/")
		if err := checkOne(pkg, rel); err != "" {
			bad = append(bad, fmt.Sprintf("%s imports %s: %s", pkg, rel, err))
		}
	}
	return bad
}

func checkOne(pkg, imp string) string {
	top := func(p string) string { return strings.SplitN(p, "/", 2)[0] }
	for _, l := range leaf {
		if pkg == l || strings.HasPrefix(pkg, l+"/") {
			return "embedding packages import no project package"
		}
	}
	if top(imp) == "test" && top(pkg) != "test" && top(pkg) != "bench" && !demo[pkg] {
		return "test/* is test support: only tests, benchmarks and the demo import it"
	}
	switch top(pkg) {
	case "pkg":
		if top(imp) != "pkg" {
			return "pkg/* may import only other pkg/* packages allowed in ARCHITECTURE.md"
		}
		own := root(pkg)
		if imp == own || strings.HasPrefix(imp, own+"/") {
			return ""
		}
		for _, a := range allowed[own] {
			if imp == a || strings.HasPrefix(imp, a+"/") {
				return ""
			}
		}
		return "not in " + own + "'s allowed imports (ARCHITECTURE.md)"
	case "internal":
		if top(imp) == "cmd" {
			return "internal/* must not import cmd/*"
		}
	}
	if top(imp) == "cmd" {
		return "nothing imports a command"
	}
	return ""
}

// root is the pkg/NAME a package belongs to.
func root(pkg string) string {
	parts := strings.SplitN(pkg, "/", 3)
	if len(parts) < 2 {
		return pkg
	}
	return parts[0] + "/" + parts[1]
}
