// Command strata works with Strata databases from the shell.
//
//	strata demo   write, read back, reopen and verify a run (the quick tour)
//	strata info   print an existing database's versions and storage metrics
//
// The database path comes from --db, else the STRATA_DB environment
// variable, else ./strata-data.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/strata-db/strata/pebbleadapter"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "strata: ") {
			msg = "strata: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

// hasDatabase reports whether path holds a database, without opening it.
func hasDatabase(path string) (bool, error) { return pebbleadapter.Exists(path, nil) }

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
	root.PersistentFlags().String("db", def, "database directory ($STRATA_DB if set, else ./strata-data)")
	root.AddCommand(newDemo(), newInfo())
	// Cobra's own help command exits 0 for an unknown topic.
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return fmt.Errorf("unknown help topic %q", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	})
	return root
}
