package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/pkg/metalapi"
)

// selector builds a machine selector from names, --tag and --all.
func selector(names, tags []string, all bool) (metalapi.Selector, error) {
	t, err := parseTags(tags, false)
	if err != nil {
		return metalapi.Selector{}, err
	}
	n := 0
	for _, b := range []bool{len(names) > 0, len(t) > 0, all} {
		if b {
			n++
		}
	}
	if n != 1 {
		return metalapi.Selector{}, usageError{fmt.Errorf("name machines, or give --tag k=v, or --all (exactly one of them)")}
	}
	return metalapi.Selector{Machines: names, Tags: t, All: all}, nil
}

func newPowerCmd(g *globals) *cobra.Command {
	var tags []string
	var all bool
	cmd := &cobra.Command{
		Use:   "power on|off|soft|cycle|reset|status NAME…|--tag k=v|--all",
		Short: "Power machines on, off, softly off, cycle, reset, or read their power state — in parallel",
		Long: `Runs one power action through the BMCs of the machines named, of those
with a tag, or of all machines, in parallel, and prints a result per
machine. The exit code is non-zero if any machine failed.

  on      power on                 off     power off now (hard)
  soft    ask the OS to shut down  cycle   off, then on
  reset   hard reset               status  read the power state`,
		Example: `  metalctl power status --all
  metalctl power cycle rack1-07 rack1-08
  metalctl power on --tag rack=r1`,
		Args:      cobra.MinimumNArgs(1),
		ValidArgs: metalapi.PowerActions,
		RunE: func(cmd *cobra.Command, args []string) error {
			action := args[0]
			valid := false
			for _, a := range metalapi.PowerActions {
				valid = valid || a == action
			}
			if !valid {
				return usageError{fmt.Errorf("unknown power action %q: want %s", action, strings.Join(metalapi.PowerActions, ", "))}
			}
			sel, err := selector(args[1:], tags, all)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Power(cmd.Context(), metalapi.PowerRequest{Selector: sel, Action: action})
			if err != nil {
				return err
			}
			return printResults(g, res)
		},
	}
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "machines with tag key=value (repeatable: all must match)")
	cmd.Flags().BoolVar(&all, "all", false, "every machine")
	return cmd
}

func newBootdevCmd(g *globals) *cobra.Command {
	var tags []string
	var all, persistent, efi bool
	cmd := &cobra.Command{
		Use:   "bootdev NAME… pxe|disk|bios [--persistent] [--efi]",
		Short: "Set the device machines boot from next (once, unless --persistent)",
		Example: `  metalctl bootdev rack1-07 pxe --efi
  metalctl bootdev --tag rack=r1 disk --persistent`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dev := args[len(args)-1]
			sel, err := selector(args[:len(args)-1], tags, all)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.BootDevice(cmd.Context(), metalapi.BootRequest{Selector: sel, Device: dev, Persistent: persistent, EFI: efi})
			if err != nil {
				return err
			}
			return printResults(g, res)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&tags, "tag", nil, "machines with tag key=value")
	f.BoolVar(&all, "all", false, "every machine")
	f.BoolVar(&persistent, "persistent", false, "keep the boot device for every boot, not just the next")
	f.BoolVar(&efi, "efi", false, "boot in UEFI mode")
	return cmd
}

// printResults prints one row per machine and fails if any failed.
func printResults(g *globals, res []metalapi.PowerResult) error {
	failed := 0
	for _, r := range res {
		if !r.OK {
			failed++
		}
	}
	err := render(g.out, g.output, res, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "MACHINE\tACTION\tRESULT\tPOWER\tTIME\tERROR")
		for _, r := range res {
			result := "ok"
			if !r.OK {
				result = "FAILED"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Machine, r.Action, result, orDash(r.PowerState),
				(time.Duration(r.ElapsedMS) * time.Millisecond).String(), orDash(r.Error))
		}
	})
	if err != nil {
		return err
	}
	powerHints(g, res)
	if failed > 0 {
		return fmt.Errorf("%d of %d machines failed", failed, len(res))
	}
	return nil
}
