// Command metal-initramfs builds the agent's initramfs: a gzip'ed newc
// cpio with the static metal-agent as /init and the kernel modules common
// server and VM hardware needs, taken from a kernel fetched by
// scripts/fetch-kernel.sh.
//
//	metal-initramfs --agent bin/metal-agent --kernel .cache/kernel --out bin/initrd
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/metal-iaas/metal/internal/initramfs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "metal-initramfs:", err)
		os.Exit(1)
	}
}

func run() error {
	agent := flag.String("agent", "", "static metal-agent binary (CGO_ENABLED=0 go build ./cmd/metal-agent)")
	kernel := flag.String("kernel", ".cache/kernel", "directory written by scripts/fetch-kernel.sh")
	out := flag.String("out", "", "output file (gzip'ed cpio)")
	mods := flag.String("modules", "", "comma-separated module name patterns (default: the built-in server/VM list)")
	ca := flag.String("ca-certs", "", "PEM bundle to install as /etc/ssl/certs/ca-certificates.crt")
	flag.Parse()
	if *agent == "" || *out == "" {
		return fmt.Errorf("--agent and --out are required")
	}
	dir, err := initramfs.ModulesDir(*kernel)
	if err != nil {
		return err
	}
	o := initramfs.Options{Agent: *agent, ModulesDir: dir, CACerts: *ca}
	if *mods != "" {
		o.Modules = strings.Split(*mods, ",")
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".initrd-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	m, err := initramfs.Build(tmp, o)
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	st, _ := os.Stat(*out)
	fmt.Printf("%s: kernel %s, %d modules (%d KiB), %d KiB compressed\n", *out, m.Release, len(m.Modules), m.Bytes>>10, st.Size()>>10)
	return nil
}
