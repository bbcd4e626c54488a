// Command convert is `metalctl image convert` without the rest of metalctl,
// for the imaging benchmark (bench/imaging/run.sh).
package main

import (
	"os"

	"github.com/metal-iaas/metal/internal/imagecli"
)

func main() {
	cmd := imagecli.NewConvertCmd()
	cmd.SilenceUsage = true
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
