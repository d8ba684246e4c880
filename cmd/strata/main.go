// Command strata works with Strata databases from the shell.
//
//	strata demo   write, read back, reopen and verify a run (the quick tour)
//	strata info   print a database's versions and storage metrics
//
// The database path comes from --db, else the STRATA_DB environment
// variable, else ./strata-data.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "strata:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Work with Strata databases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("STRATA_DB")
	if def == "" {
		def = "strata-data"
	}
	root.PersistentFlags().String("db", def, "database directory (default: $STRATA_DB or ./strata-data)")
	root.AddCommand(newDemo(), newInfo())
	return root
}
