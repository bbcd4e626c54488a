package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRequireFailsWhenStrict runs a strict and a lax child test and checks
// that a missing prerequisite fails the first and skips the second.
func TestRequireFailsWhenStrict(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Require(t, false, "the moon is missing")
		return
	}
	for _, strict := range []string{"1", "0"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestRequireFailsWhenStrict$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "METAL_REQUIRE_ALL="+strict)
		out, err := cmd.CombinedOutput()
		if strict == "1" && err == nil {
			t.Fatalf("strict: a missing prerequisite passed:\n%s", out)
		}
		if strict == "0" && (err != nil || !contains(string(out), "SKIPPED, cannot run: the moon is missing")) {
			t.Fatalf("lax: want a loud skip, got %v:\n%s", err, out)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
