// Command metalctl is the operator's CLI for metal: machines, power,
// provisioning and events over metald's REST API, plus offline image
// inspection and conversion.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/internal/client"
	"github.com/metal-iaas/metal/internal/envflag"
	"github.com/metal-iaas/metal/internal/version"
)

const envPrefix = "METALCTL"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "metalctl:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks errors in how metalctl was called (exit code 2).
type usageError struct{ error }

// globals are the flags every command shares.
type globals struct {
	server string
	token  string
	caCert string
	output string
	out    io.Writer
	errOut io.Writer
}

// client builds an API client from the global flags.
func (g *globals) client() (*client.Client, error) {
	c, err := client.New(g.server, g.token)
	if err != nil || g.caCert == "" {
		return c, err
	}
	return c, c.TrustCA(g.caCert)
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{out: stdout, errOut: stderr}
	root := &cobra.Command{
		Use:   "metalctl",
		Short: "Operate metal: machines, power, provisioning, images and events",
		Long: `metalctl drives a metald over its REST API.

  metalctl machine add rack1-07 --mac 52:54:00:aa:00:07 --bmc ipmi://admin:pw@10.1.0.7
  metalctl machine list -o json
  metalctl events --follow

Point it at metald with --server (or METALCTL_SERVER) and authenticate with
--token (or METALCTL_TOKEN); create a token with 'metald token create'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := envflag.Apply(cmd, envPrefix); err != nil {
				return usageError{err}
			}
			switch g.output {
			case "table", "json", "yaml":
			default:
				return usageError{fmt.Errorf("-o %q: want table, json or yaml", g.output)}
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "http://127.0.0.1:8080", "metald's URL")
	pf.StringVar(&g.token, "token", "", "API token")
	pf.StringVar(&g.caCert, "ca-cert", "", "PEM file of the CA to trust for an https:// --server (metald ca prints metald's own)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	root.AddCommand(
		newMachineCmd(g),
		newEventsCmd(g),
		newLeaseCmd(g),
		newImageCmd(g),
		newPowerCmd(g),
		newBootdevCmd(g),
		newProvisionCmd(g),
		newSimpleJobCmd(g, "inspect", "Boot machines into the agent to collect their hardware inventory (→ ready)"),
		newSimpleJobCmd(g, "deprovision", "Wipe machines' disks through the agent (→ ready)"),
		newJobsCmd(g),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, args []string) {
				fmt.Fprintln(cmd.OutOrStdout(), version.String("metalctl"))
			},
		},
	)
	envflag.Annotate(root, envPrefix)
	return root
}
