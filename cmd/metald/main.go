// Command metald is metal's daemon: DHCP, TFTP/iPXE and HTTP on the
// provisioning network, the REST API, BMC control and the inventory.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/internal/envflag"
	"github.com/metal-iaas/metal/internal/version"
)

const envPrefix = "METALD"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "metald:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "metald",
		Short:         "metal's daemon: DHCP, TFTP/iPXE, HTTP API, BMC control and inventory for bare-metal provisioning",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return envflag.Apply(cmd, envPrefix)
		},
	}
	root.AddCommand(newServeCmd(), newTokenCmd(), newCACmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.String("metald"))
		},
	})
	envflag.Annotate(root, envPrefix)
	return root
}
