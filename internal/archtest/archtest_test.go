package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection lists every package of the module with its imports
// (tests excluded) and fails on any import against ARCHITECTURE.md.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, Module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var n int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		n++
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], Module), "/")
		for _, v := range Check(pkg, fields[1:]) {
			t.Error(v)
		}
	}
	if n < 5 {
		t.Fatalf("go list found only %d packages: the check is not looking at the module", n)
	}
}

func TestCheckCatchesViolations(t *testing.T) {
	cases := []struct {
		pkg, imp string
		ok       bool
	}{
		{"pkg/pxe", "pkg/dhcp", true},
		{"pkg/imaging", "pkg/imaging/ovf", true},
		{"pkg/imaging/ovf", "pkg/imaging", true},
		{"pkg/dhcp", "pkg/inventory", false},
		{"pkg/inventory", "internal/api", false},
		{"pkg/bmc", "cmd/metald", false},
		{"internal/api", "pkg/inventory", true},
		{"internal/api", "cmd/metalctl", false},
		{"cmd/metald", "internal/api", true},
		{"ipxe", "pkg/dhcp", false},
		{"internal/jobs", "test/lab", false},
		{"cmd/metald", "test/bmcsim", false},
		{"pkg/imaging", "test/testenv", false},
		{"test/e2e", "test/lab", true},
		{"test/itest", "internal/api", true},
		{"test/lab", "cmd/metald", false},
		{"bench/bmc/fanout", "test/bmcsim", true},
		{"cmd/metal-demo", "test/lab", true},
	}
	for _, c := range cases {
		got := Check(c.pkg, []string{Module + "/" + c.imp, "fmt"})
		if (len(got) == 0) != c.ok {
			t.Errorf("%s → %s: ok=%v, violations %v", c.pkg, c.imp, c.ok, got)
		}
	}
}
