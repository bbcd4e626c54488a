package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/internal/tlsca"
)

// newCACmd is `metald ca`: print the --tls-auto CA certificate (PEM), or
// its SHA-256 fingerprint, for metalctl --ca-cert and for comparing with
// what metald logged at start.
func newCACmd() *cobra.Command {
	var dataDir string
	var fingerprint bool
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Print the CA certificate that metald serve --tls-auto created",
		Long: `Print the PEM certificate of the CA that metald serve --tls-auto created in
<data-dir>/tls (or, with --fingerprint, its SHA-256 fingerprint). Give it to
metalctl with --ca-cert (METALCTL_CA_CERT) or to browsers; machines' agents
get it with the initrd metald serves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cert, pemBytes, err := tlsca.LoadCA(caDir(dataDir))
			if err != nil {
				return err
			}
			if fingerprint {
				fmt.Fprintln(cmd.OutOrStdout(), tlsca.Fingerprint(cert))
				return nil
			}
			_, err = cmd.OutOrStdout().Write(pemBytes)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./metald-data", "metald's data directory")
	cmd.Flags().BoolVar(&fingerprint, "fingerprint", false, "print the SHA-256 fingerprint instead of the certificate")
	return cmd
}
