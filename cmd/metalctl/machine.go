package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/internal/client"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

func newMachineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "machine",
		Aliases: []string{"machines", "m"},
		Short:   "Enrol, list, show, change and remove machines",
	}
	cmd.AddCommand(machineAddCmd(g), machineListCmd(g), machineShowCmd(g), machineEditCmd(g), machineRmCmd(g))
	return cmd
}

func machineAddCmd(g *globals) *cobra.Command {
	var req metalapi.MachineCreate
	var tags []string
	var noVerify bool
	cmd := &cobra.Command{
		Use:   "add NAME --mac MAC [--mac MAC] [--bmc URL] [--ip IP] [--tag k=v]",
		Short: "Enrol a machine",
		Example: `  metalctl machine add rack1-07 --mac 52:54:00:aa:00:07 --ip 10.0.0.7 \
      --bmc ipmi://admin:secret@10.1.0.7 --tag rack=r1 --tag role=worker`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			t, err := parseTags(tags, false)
			if err != nil {
				return err
			}
			req.Tags = t
			if len(req.MACs) == 0 {
				return usageError{fmt.Errorf("--mac is required (repeat it for several NICs)")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			m, err := c.CreateMachine(cmd.Context(), req)
			if err != nil {
				return err
			}
			if req.BMC != "" && !noVerify {
				verifyBMC(cmd, g, c, m.Name)
			}
			return printMachines(g, []metalapi.Machine{m}, false)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&req.MACs, "mac", nil, "MAC address of a NIC (repeatable)")
	f.StringVar(&req.BMC, "bmc", "", "BMC URL: ipmi://user:pass@host[:port], redfish://… or redfish+http://…")
	f.StringVar(&req.IP, "ip", "", "IPv4 address reserved for the machine in full DHCP mode")
	f.StringVar(&req.IP6, "ip6", "", "IPv6 address reserved for the machine in full DHCPv6 mode (--dhcp6-range)")
	f.StringVar(&req.UUID, "uuid", "", "system UUID")
	f.StringVar(&req.Serial, "serial", "", "serial number")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	f.BoolVar(&noVerify, "no-verify", false, "don't check that the BMC answers")
	return cmd
}

// verifyBMC asks metald to reach the machine's BMC and warns (without
// failing) when it cannot.
func verifyBMC(cmd *cobra.Command, g *globals, c *client.Client, name string) {
	res, err := c.VerifyBMC(cmd.Context(), name)
	switch {
	case err != nil:
		fmt.Fprintf(g.errOut, "warning: could not verify %s's BMC: %v\n", name, err)
	case !res.OK:
		fmt.Fprintf(g.errOut, "warning: %s's BMC does not answer: %s (stored anyway; --no-verify skips this check)\n", name, res.Error)
	}
}

func machineListCmd(g *globals) *cobra.Command {
	var state string
	var tags []string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List machines",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseTags(tags, false); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ms, err := c.ListMachines(cmd.Context(), state, tags)
			if err != nil {
				return err
			}
			return printMachines(g, ms, true)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only machines in this state")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "only machines with tag key=value (repeatable: all must match)")
	return cmd
}

func printMachines(g *globals, ms []metalapi.Machine, list bool) error {
	var v any = ms
	if !list && len(ms) == 1 {
		v = ms[0]
	}
	return render(g.out, g.output, v, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tSTATE\tPOWER\tMACS\tIP\tBMC\tTAGS\tAGE")
		for _, m := range ms {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.State, orDash(m.PowerState),
				strings.Join(m.MACs, ","), orDash(joinNonEmpty(",", m.IP, m.IP6)), orDash(m.BMC), fmtTags(m.Tags), fmtAge(m.CreatedAt))
		}
	})
}

func machineShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a machine, with its hardware inventory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			m, err := c.GetMachine(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(g.out, g.output, m, func(w *tabwriter.Writer) {
				row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
				row("Name", m.Name)
				row("State", string(m.State))
				if m.StateReason != "" {
					row("Reason", m.StateReason)
				}
				row("MACs", strings.Join(m.MACs, ", "))
				row("IP", orDash(m.IP))
				row("IPv6", orDash(m.IP6))
				row("UUID", orDash(m.UUID))
				row("Serial", orDash(m.Serial))
				row("BMC", orDash(m.BMC))
				row("Power", orDash(m.PowerState)+" (checked "+fmtAge(m.PowerCheckedAt)+" ago)")
				row("Tags", fmtTags(m.Tags))
				row("UEFI boot", orDefault(m.UEFIBoot))
				row("Secure Boot", secureBootRow(m.Hardware))
				row("Created", m.CreatedAt.Format("2006-01-02 15:04:05 MST"))
				row("Updated", m.UpdatedAt.Format("2006-01-02 15:04:05 MST"))
				if len(m.Hardware) > 0 {
					var buf bytes.Buffer
					if json.Indent(&buf, m.Hardware, "  ", "  ") == nil {
						row("Hardware", "\n  "+buf.String())
					}
				} else {
					row("Hardware", "not inspected yet")
				}
			})
		},
	}
}

func machineEditCmd(g *globals) *cobra.Command {
	var macs, tags []string
	var ip, ip6, bmc, uuid, serial, state, reason, uefiBoot string
	var noVerify bool
	cmd := &cobra.Command{
		Use:   "edit NAME [--mac MAC]… [--ip IP] [--ip6 IP6] [--bmc URL] [--tag k=v|k=]… [--state S] [--uefi-boot ipxe|shim|default]",
		Short: "Change a machine (only the flags given change)",
		Example: `  metalctl machine edit rack1-07 --ip 10.0.0.8 --tag role=db --tag old=
  metalctl machine edit rack1-07 --ip6 fd00:10::8    # reserved DHCPv6 address
  metalctl machine edit rack1-07 --state maintenance --reason "RAM swap"
  metalctl machine edit rack1-07 --uefi-boot shim    # Secure Boot: Debian's signed shim and GRUB`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p metalapi.MachinePatch
			f := cmd.Flags()
			if f.Changed("mac") {
				p.MACs = &macs
			}
			set := func(flag string, v *string, dst **string) {
				if f.Changed(flag) {
					*dst = v
				}
			}
			set("ip", &ip, &p.IP)
			set("ip6", &ip6, &p.IP6)
			set("bmc", &bmc, &p.BMC)
			set("uuid", &uuid, &p.UUID)
			set("serial", &serial, &p.Serial)
			set("state", &state, &p.State)
			set("uefi-boot", &uefiBoot, &p.UEFIBoot)
			p.Reason = reason
			t, err := parseTags(tags, true)
			if err != nil {
				return err
			}
			p.Tags = t
			if p.MACs == nil && p.IP == nil && p.IP6 == nil && p.BMC == nil && p.UUID == nil && p.Serial == nil && p.State == nil && p.UEFIBoot == nil && len(p.Tags) == 0 {
				return usageError{fmt.Errorf("nothing to change: give at least one of --mac, --ip, --ip6, --bmc, --uuid, --serial, --tag, --state, --uefi-boot")}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			m, err := c.PatchMachine(cmd.Context(), args[0], p)
			if err != nil {
				return err
			}
			if p.BMC != nil && *p.BMC != "" && !noVerify {
				verifyBMC(cmd, g, c, m.Name)
			}
			return printMachines(g, []metalapi.Machine{m}, false)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&macs, "mac", nil, "replace the MAC list (repeatable)")
	f.StringVar(&ip, "ip", "", "reserved IPv4 address (empty removes it)")
	f.StringVar(&ip6, "ip6", "", "reserved IPv6 address for DHCPv6 (empty removes it)")
	f.StringVar(&bmc, "bmc", "", "BMC URL (empty removes it)")
	f.StringVar(&uuid, "uuid", "", "system UUID")
	f.StringVar(&serial, "serial", "", "serial number")
	f.StringArrayVar(&tags, "tag", nil, "set tag key=value, or remove it with key= (repeatable)")
	f.StringVar(&state, "state", "", "move to a lifecycle state (e.g. maintenance, ready)")
	f.StringVar(&reason, "reason", "", "why, recorded with a state change")
	f.BoolVar(&noVerify, "no-verify", false, "don't check that a new BMC answers")
	f.StringVar(&uefiBoot, "uefi-boot", "", "UEFI network boot chain: ipxe, shim (Secure Boot: Debian's signed shim and GRUB) or default (metald's --uefi-boot)")
	return cmd
}

// orDefault shows an unset per-machine choice as metald's default.
func orDefault(s string) string {
	if s == "" {
		return "default (metald --uefi-boot)"
	}
	return s
}

// secureBootRow is what the agent reported about the firmware: "yes
// (uefi)", "no (bios)", or "-" before an inspection.
func secureBootRow(hw json.RawMessage) string {
	var h struct {
		Firmware   string `json:"firmware"`
		SecureBoot *bool  `json:"secure_boot"`
	}
	if len(hw) == 0 || json.Unmarshal(hw, &h) != nil || h.SecureBoot == nil {
		return "-"
	}
	v := "no"
	if *h.SecureBoot {
		v = "yes"
	}
	if h.Firmware != "" {
		v += " (" + h.Firmware + ")"
	}
	return v
}

func machineRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME…",
		Aliases: []string{"delete", "remove"},
		Short:   "Remove machines (their events stay)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var failed int
			for _, name := range args {
				if err := c.DeleteMachine(cmd.Context(), name); err != nil {
					fmt.Fprintf(g.errOut, "metalctl: %s: %v\n", name, err)
					failed++
					continue
				}
				if g.output == "table" {
					fmt.Fprintf(g.out, "removed %s\n", name)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d machines not removed", failed, len(args))
			}
			return nil
		},
	}
}
