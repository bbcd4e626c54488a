package envflag

import (
	"testing"

	"github.com/spf13/cobra"
)

func TestApply(t *testing.T) {
	var dataDir, httpAddr string
	var got string
	cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, args []string) error {
		got = dataDir + "|" + httpAddr
		return nil
	}, PreRunE: func(cmd *cobra.Command, args []string) error { return Apply(cmd, "METALD") }}
	cmd.Flags().StringVar(&dataDir, "data-dir", "default", "")
	cmd.Flags().StringVar(&httpAddr, "http", ":8080", "")
	t.Setenv("METALD_DATA_DIR", "/from/env")
	t.Setenv("METALD_HTTP", ":1")
	cmd.SetArgs([]string{"--http", ":2"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got != "/from/env|:2" {
		t.Fatalf("got %q: env must fill unset flags and never override given ones", got)
	}
}

func TestApplyBadValue(t *testing.T) {
	var n int
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil },
		PreRunE: func(cmd *cobra.Command, args []string) error { return Apply(cmd, "METALD") }}
	cmd.Flags().IntVar(&n, "workers", 1, "")
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	t.Setenv("METALD_WORKERS", "many")
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err == nil {
		t.Fatal("a bad env value must be an error naming the variable")
	}
}
