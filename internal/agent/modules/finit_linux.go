package modules

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FinitModule loads the module file at path with finit_module(2).
func FinitModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open module: %w", err)
	}
	defer f.Close()
	return mapInsertErr(path, unix.FinitModule(int(f.Fd()), "", 0))
}
