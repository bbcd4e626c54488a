// Command metal-demo-os is the /init of the tiny "installed OS" that metal's
// end-to-end tests and `make demo` provision onto a VM's disk (see
// test/lab). It runs as PID 1 from an initramfs that syslinux loads off
// the provisioned disk, prints markers on the console, fetches its hostname
// from metald's metadata service and then idles:
//
//	METAL-INSTALLED-OS-BOOTED kernel=<release>
//	METAL-INSTALLED-OS-OK hostname=<local-hostname or "unknown">
//
// The metadata URL comes from the kernel command line:
// metal.metadata=http://HOST:PORT (EC2-style /latest/meta-data/, which
// metald answers for the machine that holds the request's source address).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/metal-iaas/metal/internal/agent"
	"github.com/metal-iaas/metal/internal/agent/modules"
	"github.com/metal-iaas/metal/internal/agent/netconf"
)

// Markers the tests look for on the serial console.
const (
	MarkerBooted = "METAL-INSTALLED-OS-BOOTED"
	MarkerOK     = "METAL-INSTALLED-OS-OK"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "metal-demo-os: this is the /init of metal's test OS image; it only runs as PID 1")
		os.Exit(2)
	}
	err := agent.MountEarly()
	fmt.Printf("\n%s kernel=%s\n", MarkerBooted, agent.KernelRelease())
	if err != nil {
		fmt.Println("metal-demo-os: early mounts:", err)
	}
	host := "unknown"
	if h, err := hostname(); err != nil {
		fmt.Println("metal-demo-os: no hostname from metadata:", err)
	} else {
		host = h
	}
	fmt.Printf("%s hostname=%s\n", MarkerOK, host)
	for {
		time.Sleep(time.Hour)
	}
}

// hostname loads the NIC driver, runs DHCP and asks the metadata service.
func hostname() (string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return "", err
	}
	base := ""
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "metal.metadata="); ok {
			base = strings.TrimRight(v, "/")
		}
	}
	if base == "" {
		return "", fmt.Errorf("no metal.metadata= on the kernel command line")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ld := &modules.Loader{
		Dir: filepath.Join("/lib/modules", agent.KernelRelease()), SysRoot: "/sys", Insert: modules.FinitModule,
		Log: log, Settle: 300 * time.Millisecond, Rounds: 20, ProcModules: "/proc/modules",
	}
	if _, err := ld.Run(ctx); err != nil {
		fmt.Println("metal-demo-os: loading modules:", err)
	}
	lease, err := netconf.Configure(ctx, netconf.Options{Timeout: 40 * time.Second, Log: log})
	if err != nil {
		return "", fmt.Errorf("dhcp: %w", err)
	}
	fmt.Printf("metal-demo-os: %s has %s\n", lease.Interface, lease.Address.String())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/latest/meta-data/local-hostname", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}
