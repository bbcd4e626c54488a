// Command convert is `metalctl image convert` without the rest of metalctl,
// for the imaging benchmark (bench/imaging/run.sh). With METAL_CPUPROFILE
// set it writes a CPU profile there.
package main

import (
	"os"
	"runtime/pprof"

	"github.com/metal-iaas/metal/internal/imagecli"
)

func main() {
	if p := os.Getenv("METAL_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	cmd := imagecli.NewConvertCmd()
	cmd.SilenceUsage = true
	if err := cmd.Execute(); err != nil {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
