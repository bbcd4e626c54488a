// Command metal-demo is `make demo`: it provisions a QEMU VM end to end on
// this machine, in a private network namespace, with the real metald,
// metalctl, the netbooted agent and an ipmi_sim BMC, with a stock Debian 12
// cloud image (nothing metal-specific inside), then shows the installed
// OS's serial console: its own cloud-init configured it from the config
// drive, up to the login prompt with the hostname metald gave it.
//
//	metal-demo [--dir demo-work] [--keep]
//
// It needs root (network namespaces, tap devices). Everything runs inside
// the namespace "metal-demo": nothing is sent to any other network. It
// cleans up on exit and on Ctrl-C, and a second run first removes what a
// killed run left behind.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/metal-iaas/metal/test/lab"
)

const (
	nsName  = "metal-demo"
	vmName  = "demo-01"
	vmMAC   = "52:54:00:de:00:01"
	vmIP    = "10.66.0.11"
	imgName = "debian-12"
	// demoKey is a public key for show: cloud-init puts it in the debian
	// user's authorized_keys (its private half exists nowhere).
	demoKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGV4YW1wbGUta2V5LWZvci10aGUtbWV0YWwtZGVtbw metal-demo"
	// demoUserData is what `metalctl provision --user-data` hands the
	// installed OS.
	demoUserData = `#cloud-config
runcmd:
  - [sh, -c, 'echo "METAL-DEMO: cloud-init ran user-data on $(hostname), address $(hostname -I)" > /dev/ttyS0']
`
)

func main() {
	dir := flag.String("dir", "demo-work", "work directory (logs, metald's data, VM disk)")
	keep := flag.Bool("keep", false, "keep everything running after the demo until Ctrl-C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *keep); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "\nmetal-demo: interrupted; cleaned up")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "metal-demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func run(ctx context.Context, dir string, keep bool) error {
	if err := lab.Check(); err != nil {
		return fmt.Errorf("%v (make deps installs the Debian packages; run as root)", err)
	}
	root, err := lab.RepoRoot()
	if err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	work := filepath.Join(dir, "run")
	lab.Cleanup(nsName)
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	t0 := time.Now()

	step("building metald, metalctl, the agent and the test OS's init")
	bins, err := lab.Build(ctx, root, filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	step("fetching Debian's kernel for the agent (cached in .cache/kernel)")
	kdir, err := lab.Kernel(ctx, root)
	if err != nil {
		return err
	}
	agentDir := filepath.Join(work, "agent")
	if err := lab.AgentBoot(kdir, bins.Agent, agentDir); err != nil {
		return err
	}
	fmt.Printf("    agent boot files in %s (vmlinuz, initrd)\n", agentDir)

	step("creating network namespace %s: bridge br0 %s/24 + fd66::1/64, router advertisements", nsName, lab.BridgeIP)
	l, err := lab.New(ctx, lab.Config{Name: nsName, Dir: work})
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up: stopping QEMU, ipmi_sim, metald; deleting namespace %s", nsName)
		l.Close()
	}()

	md, err := l.StartMetald(ctx, lab.MetaldConfig{Bin: bins.Metald, AgentDir: agentDir,
		Extra: []string{"--power-poll", "0", "--boot-timeout", "5m"}})
	if err != nil {
		return err
	}
	fmt.Printf("    metald serving %s, full DHCP on br0 (log: %s)\n", md.URL, md.LogPath())

	step("starting an ipmi_sim BMC wired to a QEMU VM (TCG, 768 MiB, blank 3 GiB virtio disk, virtio NIC %s)", vmMAC)
	v, err := l.AddVM(ctx, lab.VMConfig{Name: vmName, MAC: vmMAC, MemMiB: 768, DiskBytes: 3 << 30})
	if err != nil {
		return err
	}
	fmt.Printf("    BMC %s\n", strings.Replace(v.BMCURL(), ":metal-lab@", ":***@", 1))
	ctl := func(show bool, args ...string) error {
		fmt.Printf("    $ metalctl %s\n", strings.Join(args, " "))
		cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		cmd := md.Metalctl(cctx, bins.Metalctl, args...)
		cmd.Stdin = os.Stdin
		if show {
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			return cmd.Run()
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("metalctl %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}

	step("registering the machine with its BMC, marking it ready")
	if err := ctl(true, "machine", "add", vmName, "--mac", vmMAC, "--bmc", v.BMCURL(), "--ip", vmIP); err != nil {
		return err
	}
	if err := ctl(false, "machine", "edit", vmName, "--state", "ready"); err != nil {
		return err
	}

	step("building a stock Debian 12 cloud image (mmdebstrap: cloud kernel, grub-pc, cloud-init; cached in .cache/debian)")
	img, err := lab.BuildDebian(ctx, lab.DebianConfig{CacheDir: filepath.Join(root, ".cache", "debian"), Layout: "mbr", Log: os.Stdout})
	if err != nil {
		return err
	}
	st, _ := os.Stat(img.OVA)
	fmt.Printf("    %s: %d MiB OVA, %d MiB disk, kernel %s, raw sha256 %s…\n", img.OVA, st.Size()>>20, img.SizeBytes>>20, img.Kernel, img.RawSHA256[:16])
	if err := ctl(true, "image", "upload", img.OVA, "--name", imgName); err != nil {
		return err
	}
	userData, keyFile := filepath.Join(work, "user-data.yaml"), filepath.Join(work, "demo.pub")
	if err := os.WriteFile(userData, []byte(demoUserData), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, []byte(demoKey+"\n"), 0o644); err != nil {
		return err
	}

	step("provisioning: PXE via the BMC → agent → image onto vda → config drive → disk boot via the BMC")
	serialStart := len(v.SerialText())
	if err := ctl(true, "provision", vmName, "--image", imgName, "--user-data", userData, "--ssh-key", keyFile,
		"--wait", "--timeout", "10m"); err != nil {
		return fmt.Errorf("provision failed: %w (metald log: %s, serial console: %s)", err, md.LogPath(), v.Serial)
	}
	if err := ctl(true, "machine", "list"); err != nil {
		return err
	}

	step("waiting for Debian to boot from the disk and configure itself (serial console %s)", v.Serial)
	login := vmName + " login:"
	if _, err := v.WaitSerial(ctx, login, serialStart, 6*time.Minute); err != nil {
		return err
	}
	if _, err := v.WaitSerial(ctx, "METAL-DEMO: cloud-init ran user-data", serialStart, 3*time.Minute); err != nil {
		return err
	}
	showConsole(v.SerialText()[serialStart:])
	fmt.Printf("\n    a stock Debian configured itself from the NoCloud config drive metal wrote after the image:\n"+
		"    hostname %s, static address %s, the demo key for user debian, the user-data's runcmd\n", vmName, vmIP)
	fmt.Printf("    demo done in %.0f s\n", time.Since(t0).Seconds())

	if keep {
		fmt.Printf("\nEverything keeps running until Ctrl-C. In another shell:\n"+
			"  ip netns exec %s env METALCTL_SERVER=%s METALCTL_TOKEN=%s %s events\n"+
			"  tail -f %s\n", nsName, md.URL, md.Token, bins.Metalctl, v.Serial)
		<-ctx.Done()
	}
	return nil
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1bc`)

// showConsole prints the installed OS's console from GRUB on: kernel,
// cloud-init's lines and the login prompt.
func showConsole(s string) {
	s = ansi.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r", "")
	if i := strings.LastIndex(s, "Booting `"); i >= 0 {
		s = s[i:]
	} else if i := strings.LastIndex(s, "Linux version"); i >= 0 {
		s = s[i:]
	}
	fmt.Println("    --- serial console of the installed OS (booted from vda), cloud-init and login lines ---")
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " ")
		if strings.Contains(line, "Booting `") || strings.Contains(line, "Linux version") || strings.Contains(line, "Cloud-init v.") ||
			strings.Contains(line, "METAL-DEMO") || strings.Contains(line, "login:") || strings.Contains(line, "Debian GNU/Linux") {
			if len(line) > 160 {
				line = line[:160] + "…"
			}
			fmt.Println("    | " + line)
		}
	}
	fmt.Println("    ---")
}
