package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metal-iaas/metal/internal/client"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

func newProvisionCmd(g *globals) *cobra.Command {
	var req metalapi.ProvisionRequest
	var disk, serial, wwn, userData, configDrive string
	var sshKeys []string
	var minSize int64
	var wait bool
	var delta string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "provision NAME… --image IMG [--disk HINT] [--user-data FILE] [--ssh-key FILE]… [--config-drive nocloud|configdrive|none] [--wait]",
		Short: "Write an image to machines' disks and boot them into it",
		Long: `Starts a provision job per machine: one-time PXE boot and a power cycle
through the BMC (or a manual power-on for machines without one), the agent
streams the image straight onto the chosen disk and verifies its SHA-256,
then writes a config drive at the very end of the disk (--config-drive:
nocloud, a CIDATA partition that stock cloud images' cloud-init reads; or
configdrive, OpenStack's CONFIG-2; or none), and the machine reboots from
disk into the installed OS, which configures itself from it: hostname
(--hostname, default the machine's name), ssh keys (--ssh-key), network
(the reserved address as a static configuration when metald runs the
DHCP, else DHCP) and --user-data as given. The disk must hold the image
plus 65 MiB for the drive.

An image uploaded to metald is described as verified chunks: the agent
fetches them (several at once, each checked against its SHA-256), never
fetches the zero ones, and with --delta reads each chunk's range of the
disk first and fetches only what differs — a second provision of the same
image writes almost nothing. --delta auto (the default) is on for a
machine that was provisioned before.

Without hints the agent picks the smallest disk the image fits on.
With --wait, metalctl shows a progress line per machine and exits 0 only
when every machine is provisioned.`,
		Example: `  metalctl provision rack1-07 rack1-08 --image ubuntu-24.04 --wait
  metalctl provision rack1-09 --image debian --disk /dev/nvme0n1 --user-data cloud.yaml
  metalctl provision rack1-10 --image debian-12 --ssh-key ~/.ssh/id_ed25519.pub --hostname web10.example.com --wait
  metalctl provision win01 --image windows --config-drive configdrive --user-data unattend.ps1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Image == "" {
				return usageError{fmt.Errorf("--image is required")}
			}
			if disk != "" || serial != "" || wwn != "" || minSize > 0 {
				req.Hints = &metalapi.RootDeviceHints{Name: disk, Serial: serial, WWN: wwn, MinSizeBytes: minSize}
			}
			if userData != "" {
				b, err := os.ReadFile(userData)
				if err != nil {
					return usageError{fmt.Errorf("--user-data: %w", err)}
				}
				req.UserData = string(b)
			}
			for _, p := range sshKeys {
				keys, err := readSSHKeys(p)
				if err != nil {
					return usageError{fmt.Errorf("--ssh-key: %w", err)}
				}
				req.SSHKeys = append(req.SSHKeys, keys...)
			}
			f, err := metalapi.ParseConfigDrive(configDrive)
			if err != nil {
				return usageError{fmt.Errorf("--config-drive %q: want nocloud, configdrive or none", configDrive)}
			}
			req.ConfigDrive = f
			switch delta {
			case "auto":
			case "on", "off":
				on := delta == "on"
				req.Delta = &on
			default:
				return usageError{fmt.Errorf("--delta %q: want auto, on or off", delta)}
			}
			return startJobs(cmd, g, "provision", args, wait, timeout, func(c *client.Client, name string) (metalapi.Job, error) {
				return c.Provision(cmd.Context(), name, req)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Image, "image", "", "name of an uploaded image (metalctl image list)")
	f.StringVar(&disk, "disk", "", "target disk name, e.g. /dev/sda or nvme0n1")
	f.StringVar(&serial, "disk-serial", "", "target disk serial number")
	f.StringVar(&wwn, "disk-wwn", "", "target disk WWN")
	f.Int64Var(&minSize, "disk-min-size", 0, "target disk minimum size in bytes")
	f.StringVar(&userData, "user-data", "", "cloud-init user-data file (#cloud-config, a script or multipart) for the installed OS")
	f.StringArrayVar(&sshKeys, "ssh-key", nil, "OpenSSH public key file for the installed OS's default user (repeatable; every key line of the file)")
	f.StringVar(&req.Hostname, "hostname", "", "hostname of the installed OS (default: the machine's name)")
	f.StringVar(&configDrive, "config-drive", "nocloud", "config drive the agent writes at the end of the disk: nocloud, configdrive (OpenStack) or none")
	f.StringVar(&delta, "delta", "auto", "skip chunks the disk already holds: auto (on for a machine provisioned before), on or off")
	f.BoolVar(&wait, "wait", false, "wait and show progress until every machine is done")
	f.DurationVar(&timeout, "timeout", 2*time.Hour, "with --wait, give up waiting after this long")
	return cmd
}

// newSimpleJobCmd builds inspect and deprovision.
func newSimpleJobCmd(g *globals, kind, short string) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   kind + " NAME…",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return startJobs(cmd, g, kind, args, wait, timeout, func(c *client.Client, name string) (metalapi.Job, error) {
				return c.StartJob(cmd.Context(), name, kind)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait and show progress until every machine is done")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "with --wait, give up waiting after this long")
	return cmd
}

// startJobs starts one job per machine and optionally follows them.
func startJobs(cmd *cobra.Command, g *globals, kind string, names []string, wait bool, timeout time.Duration,
	start func(*client.Client, string) (metalapi.Job, error)) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	var started []metalapi.Job
	failed := 0
	for _, n := range names {
		j, err := start(c, n)
		if err != nil {
			fmt.Fprintf(g.errOut, "metalctl: %s: %v\n", n, err)
			if hint := jobHint(cmd.Context(), c, kind, n, err); hint != "" {
				fmt.Fprintf(g.errOut, "hint: %s\n", hint)
			}
			failed++
			continue
		}
		started = append(started, j)
		if !wait && g.output == "table" {
			fmt.Fprintf(g.out, "%s: %s job %d started (follow with: metalctl jobs %s, metalctl events --follow --machine %s)\n",
				n, j.Kind, j.ID, n, n)
		}
	}
	if !wait {
		if g.output != "table" {
			if err := render(g.out, g.output, started, nil); err != nil {
				return err
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d machines not started", failed, len(names))
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	final := follow(ctx, g, c, started)
	for _, j := range final {
		if j.State != metalapi.JobSucceeded {
			failed++
		}
	}
	if g.output != "table" {
		if err := render(g.out, g.output, final, nil); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d machines did not succeed", failed, len(names))
	}
	return nil
}

// follow polls jobs until they end, drawing a live line per machine on a
// terminal and a plain line per change otherwise.
func follow(ctx context.Context, g *globals, c *client.Client, js []metalapi.Job) []metalapi.Job {
	tty := false
	if f, ok := g.errOut.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	last := map[int64]string{}
	drawn := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		running := 0
		for i, j := range js {
			if j.State == metalapi.JobRunning {
				if nj, err := c.GetJob(ctx, j.ID); err == nil {
					js[i] = nj
				}
			}
			if js[i].State == metalapi.JobRunning {
				running++
			}
		}
		if tty {
			if drawn > 0 {
				fmt.Fprintf(g.errOut, "\x1b[%dA", drawn)
			}
			for _, j := range js {
				fmt.Fprintf(g.errOut, "\x1b[2K%s\n", jobLine(j, true))
			}
			drawn = len(js)
		} else {
			for _, j := range js {
				line := jobLine(j, false)
				if line != last[j.ID] {
					fmt.Fprintln(g.errOut, line)
					last[j.ID] = line
				}
			}
		}
		if running == 0 {
			return js
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(g.errOut, "metalctl: stopped waiting:", ctx.Err())
			return js
		case <-tick.C:
		}
	}
}

// jobLine renders a job: machine, phase, a bar with percentage, rate and
// ETA while writing. The non-terminal form rounds to 10% steps so that a
// log gets a line per step, not per second.
func jobLine(j metalapi.Job, tty bool) string {
	var p metalapi.JobProgress
	_ = json.Unmarshal(j.Progress, &p)
	status := j.Phase
	switch j.State {
	case metalapi.JobSucceeded:
		status = "done"
	case metalapi.JobFailed:
		return fmt.Sprintf("%-16s FAILED  %s", j.Machine, j.Error)
	}
	line := fmt.Sprintf("%-16s %-10s", j.Machine, status)
	if p.Total > 0 && (j.Phase == metalapi.PhaseWriting || j.State != metalapi.JobRunning) {
		pct := float64(p.BytesWritten) / float64(p.Total) * 100
		if j.State == metalapi.JobSucceeded {
			pct = 100
		}
		if !tty {
			return fmt.Sprintf("%s %3.0f%%", line, float64(int(pct/10))*10)
		}
		const width = 30
		filled := int(pct / 100 * width)
		bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
		line += fmt.Sprintf(" %s %5.1f%% %9s/s", bar, pct, humanBytes(int64(p.RateBytesPerSec)))
		if p.ETASeconds >= 0 && j.State == metalapi.JobRunning {
			line += " ETA " + (time.Duration(p.ETASeconds) * time.Second).String()
		}
		if p.BytesSkipped > 0 {
			line += " " + humanBytes(p.BytesSkipped) + " already on disk"
		}
		if p.BytesFromPeers > 0 {
			line += fmt.Sprintf(" %d%% from peers", p.BytesFromPeers*100/max(p.BytesRead, 1))
		}
	}
	return line
}

func newJobsCmd(g *globals) *cobra.Command {
	var active bool
	cmd := &cobra.Command{
		Use:   "jobs [NAME]",
		Short: "List provision, inspect and deprovision jobs (newest first)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			machine := ""
			if len(args) == 1 {
				machine = args[0]
			}
			js, err := c.ListJobs(cmd.Context(), machine, active)
			if err != nil {
				return err
			}
			return render(g.out, g.output, js, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tMACHINE\tKIND\tSTATE\tPHASE\tAGE\tERROR")
				for _, j := range js {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Machine, j.Kind, j.State, orDash(j.Phase), fmtAge(j.CreatedAt), orDash(j.Error))
				}
			})
		},
	}
	cmd.Flags().BoolVar(&active, "active", false, "only running jobs")
	cmd.AddCommand(newJobShowCmd(g))
	return cmd
}

// readSSHKeys reads the key lines of an OpenSSH public key or
// authorized_keys file (comments and blank lines skipped).
func readSSHKeys(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key", path)
	}
	return keys, nil
}
