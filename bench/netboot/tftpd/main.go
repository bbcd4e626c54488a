// Command tftpd runs pkg/pxe's read-only TFTP server over a directory and
// the embedded iPXE binaries, for the TFTP benchmark. Not a product binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metal-iaas/metal/ipxe"
	"github.com/metal-iaas/metal/pkg/bootfs"
)

func main() {
	addr := flag.String("addr", ":69", "listen address")
	root := flag.String("root", "", "directory to serve")
	anticipate := flag.Uint("anticipate", 0, "pin/tftp send-ahead window (0 = lock-step)")
	flag.Parse()
	files, err := bootfs.NewFiles(*root, ipxe.FS())
	if err == nil {
		var srv *bootfs.TFTPServer
		srv, err = bootfs.NewTFTPServer(bootfs.TFTPConfig{Addr: *addr, Files: files, Anticipate: *anticipate, Registerer: prometheus.NewRegistry()})
		if err == nil {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			err = srv.Run(ctx)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tftpd:", err)
		os.Exit(1)
	}
}
