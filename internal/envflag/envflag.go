// Package envflag gives every command-line flag an environment-variable
// fallback: flag --data-dir of a program with prefix METALD reads
// METALD_DATA_DIR when the flag is not given. An explicit flag wins.
package envflag

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Name returns the environment variable for a flag.
func Name(prefix, flag string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Apply sets every flag of cmd (its own and inherited) that was not given
// on the command line from its environment variable, if set.
func Apply(cmd *cobra.Command, prefix string) error {
	var firstErr error
	visit := func(f *pflag.Flag) {
		if firstErr != nil || f.Changed || f.Name == "help" {
			return
		}
		env := Name(prefix, f.Name)
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			firstErr = fmt.Errorf("%s=%q: %w", env, v, err)
			return
		}
		f.Changed = true
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return firstErr
}

// Annotate appends "[$ENV]" to every flag's usage so --help shows the
// variable.
func Annotate(cmd *cobra.Command, prefix string) {
	annotate := func(fs *pflag.FlagSet) {
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" || strings.Contains(f.Usage, "[$") {
				return
			}
			f.Usage += " [$" + Name(prefix, f.Name) + "]"
		})
	}
	annotate(cmd.Flags())
	annotate(cmd.PersistentFlags())
	for _, c := range cmd.Commands() {
		Annotate(c, prefix)
	}
}
