// Package version carries the build's version, set at link time with
// -ldflags "-X github.com/metal-iaas/metal/internal/version.Version=…".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release name; "dev" for an untagged build.
var Version = "dev"

// String describes the build in one line.
func String(program string) string {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	return fmt.Sprintf("%s %s%s %s %s/%s", program, Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
