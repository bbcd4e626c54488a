// Package testenv is how metal's tests meet the machine they run on: a
// test whose prerequisite (a tool, root, a kernel) is missing skips with
// the reason — loudly, never silently — and under METAL_REQUIRE_ALL=1 (set
// by `make test` and CI) fails instead, so nothing passes by not running.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether missing prerequisites are failures.
func Strict() bool { return os.Getenv("METAL_REQUIRE_ALL") == "1" }

// Require continues when ok; otherwise it fails (strict) or skips, saying
// why.
func Require(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if Strict() {
		t.Fatalf("cannot run: %s (METAL_REQUIRE_ALL=1, so this is a failure)", why)
	}
	t.Skipf("SKIPPED, cannot run: %s (set METAL_REQUIRE_ALL=1 to make this a failure)", why)
}

// Tool requires a program on PATH and returns its path; debPkg names the
// Debian package that provides it.
func Tool(t testing.TB, tool, debPkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	Require(t, err == nil, "missing "+tool+": apt-get install -y "+debPkg)
	return p
}

// Root requires root (network namespaces, tap devices, raw sockets).
func Root(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "needs root (network namespaces, tap devices)")
}
