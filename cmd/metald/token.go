package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newTokenCmd manages API tokens directly in the data dir, with or without
// a running metald (SQLite's WAL lets both write).
func newTokenCmd() *cobra.Command {
	var dataDir, db string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (works offline on the data dir)",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "./metald-data", "metald's data directory")
	cmd.PersistentFlags().StringVar(&db, "db", "", "PostgreSQL URL of a shared inventory (as metald serve --db); empty uses SQLite in --data-dir")

	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token; its secret is printed once, as the last line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := openInventory(cmd.Context(), db, dataDir)
			if err != nil {
				return err
			}
			defer store.Close()
			tok, secret, err := store.CreateToken(cmd.Context(), name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created token %s (%s); store the secret now, it is not shown again:\n", tok.ID, tok.Name)
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "admin", "a label for the token")

	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := openInventory(cmd.Context(), db, dataDir)
			if err != nil {
				return err
			}
			defer store.Close()
			toks, err := store.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tCREATED\tLAST USED\tSTATUS")
			for _, t := range toks {
				status := "active"
				if t.Revoked {
					status = "revoked"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339), fmtTime(t.LastUsedAt), status)
			}
			return w.Flush()
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := openInventory(cmd.Context(), db, dataDir)
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}
