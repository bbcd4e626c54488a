// Command metal-agent is the stage-2 agent. As PID 1 of the initramfs it
// mounts the pseudo filesystems, reads metal.mac and metal.url from the
// kernel command line, loads the kernel modules the hardware asks for,
// configures the boot NIC by DHCP, listens for LLDP, registers the
// machine's inventory with metald and runs its tasks. Run as a normal
// program (tests, debugging) it takes the same settings as flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/metal-iaas/metal/internal/agent"
	"github.com/metal-iaas/metal/internal/agent/hwinfo"
	"github.com/metal-iaas/metal/internal/agent/lldp"
	"github.com/metal-iaas/metal/internal/agent/modules"
	"github.com/metal-iaas/metal/internal/agent/netconf"
	"github.com/metal-iaas/metal/internal/agent/tasks"
	"github.com/metal-iaas/metal/pkg/agentapi"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if os.Getpid() == 1 {
		pid1()
		return
	}
	os.Exit(program())
}

// program is the non-PID-1 mode: flags, no mounts, no modules.
func program() int {
	var (
		url      = flag.String("url", "", "metald base URL (metal.url)")
		mac      = flag.String("mac", "", "boot NIC MAC (metal.mac)")
		once     = flag.Bool("once", false, "handle the first assignment, then exit")
		root     = flag.String("root", "/", "root of /proc and /sys for the inventory (a fake tree in tests)")
		devDir   = flag.String("dev-dir", "/dev", "directory of disk device nodes")
		lldpWait = flag.Duration("lldp", 0, "listen this long for LLDP on every NIC (needs CAP_NET_RAW)")
		debug    = flag.Bool("debug", false, "debug logging")
	)
	flag.Parse()
	log := newLogger(*debug)
	if *url == "" {
		fmt.Fprintln(os.Stderr, "metal-agent: --url is required")
		return 2
	}
	m := ""
	if *mac != "" {
		var err error
		if m, err = agentapi.NormalizeMAC(*mac); err != nil {
			fmt.Fprintln(os.Stderr, "metal-agent:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if strings.HasPrefix(*url, "https://") {
		if err := agent.WaitEntropy(ctx, log); err != nil {
			return 1
		}
	}
	a := build(log, *url, m, *root, *devDir, *lldpWait, nil)
	a.Config.Once = *once
	if err := a.Run(ctx); err != nil && ctx.Err() == nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger logs text to stderr (the console as PID 1) and keeps a tail
// of recent lines for progress reports.
func newLogger(debug bool) *slog.Logger {
	lvl := slog.LevelInfo
	if debug {
		lvl = slog.LevelDebug
	}
	return slog.New(agent.NewLogTail(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}), 20))
}

func build(log *slog.Logger, url, mac, root, devDir string, lldpWait time.Duration, power agent.Power) *agent.Agent {
	// HTTPS to metald trusts the CA metald appended to the initrd.
	tr := agent.Transport(agentapi.CAFile, log)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	sys := filepath.Join(root, "sys")
	client := &agent.Client{Base: url, HTTP: hc, Log: log}
	inv := &agent.SysInventory{Root: root, Log: log}
	if lldpWait > 0 {
		inv.LLDP = func(ctx context.Context) []agentapi.LLDPNeighbor {
			var names []string
			for _, n := range hwinfo.NICs(root) {
				names = append(names, n.Name)
			}
			return lldp.Listen(ctx, names, lldpWait, log)
		}
	}
	return &agent.Agent{
		Config:    agent.Config{MAC: mac, Version: version},
		Client:    client,
		Inventory: inv,
		Tasks: &tasks.Runner{
			DevDir:  devDir,
			SysRoot: sys,
			Disks:   func() []agentapi.Disk { return hwinfo.Disks(root) },
			// The image download has no overall timeout, only an idle one.
			HTTP:  &http.Client{Transport: tr},
			Swarm: client,
			Log:   log,
		},
		Power: power,
		Log:   log,
		Tail:  tailOf(log),
	}
}

func tailOf(log *slog.Logger) *agent.LogTail {
	t, _ := log.Handler().(*agent.LogTail)
	return t
}

// pid1 never returns: PID 1 exiting panics the kernel.
func pid1() {
	mountErr := agent.MountEarly()
	log := newLogger(false)
	if mountErr != nil {
		log.Error("early mounts", "err", mountErr)
	}
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fatal(log, fmt.Errorf("read /proc/cmdline: %w", err))
	}
	cl, err := agent.ParseCmdline(string(b))
	if err != nil {
		fatal(log, err)
	}
	log = newLogger(cl.Debug)
	rel := agent.KernelRelease()
	log.Info("metal-agent starting", "version", version, "kernel", rel, "mac", cl.MAC, "url", cl.URL)
	ctx := context.Background()

	t0 := time.Now()
	ld := &modules.Loader{
		Dir: filepath.Join("/lib/modules", rel), SysRoot: "/sys", Insert: modules.FinitModule,
		Log: log, Settle: 300 * time.Millisecond, Rounds: 30, ProcModules: "/proc/modules",
	}
	loaded, err := ld.Run(ctx)
	if err != nil {
		log.Error("loading modules", "err", err)
	}
	log.Info("modules loaded", "modules", loaded, "seconds", time.Since(t0).Seconds())

	for attempt := 1; ; attempt++ {
		// With metal.mac, odd attempts use that NIC only and even ones
		// every NIC: a wrong or renamed MAC must not strand the machine.
		mac := cl.MAC
		if attempt%2 == 0 {
			mac = ""
		}
		lease, err := netconf.Configure(ctx, netconf.Options{MAC: mac, Timeout: 60 * time.Second, ResolvConf: "/etc/resolv.conf", Family: netconf.FamilyOf(cl.URL), Log: log})
		if err == nil {
			if cl.MAC == "" {
				cl.MAC = lease.MAC
			}
			break
		}
		log.Error("network configuration failed, retrying", "attempt", attempt, "mac", mac, "err", err)
		time.Sleep(5 * time.Second)
	}
	// LLDP reaches only interfaces that are up.
	if _, err := netconf.LinksUp(); err != nil {
		log.Warn("bringing links up for LLDP", "err", err)
	}
	if strings.HasPrefix(cl.URL, "https://") {
		_ = agent.WaitEntropy(ctx, log)
	}
	a := build(log, cl.URL, cl.MAC, "/", "/dev", cl.LLDP, agent.SysPower{})
	for {
		err := a.Run(ctx)
		log.Error("agent loop ended, restarting", "err", err)
		time.Sleep(5 * time.Second)
	}
}

func fatal(log *slog.Logger, err error) {
	log.Error("cannot start; rebooting in 60 s", "err", err)
	time.Sleep(60 * time.Second)
	_ = agent.SysPower{}.Reboot()
	select {}
}
