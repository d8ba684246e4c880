// Command strata works with Strata databases from the shell.
//
//	strata demo   write, read back, reopen and verify a run (the quick tour)
//	strata info   print an existing database's versions and storage metrics
//	strata completion  print a shell completion script (cobra's)
//
// The database path comes from --db, else the STRATA_DB environment
// variable, else ./strata-data.
package main

import (
	"errors"
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

// noArgs refuses positional arguments: the commands take flags only.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q (the database path is given with --db)", cmd.CommandPath(), strings.Join(args, " "))
	}
	return nil
}

// dbPath returns the --db flag's path, refusing an empty one.
func dbPath(cmd *cobra.Command) (string, error) {
	path, err := cmd.Flags().GetString("db")
	if err == nil && path == "" {
		err = errors.New("--db needs a path (or unset it, for $STRATA_DB or ./strata-data)")
	}
	return path, err
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
	root.PersistentFlags().String("db", def, "database directory ($STRATA_DB if set, else ./strata-data)")
	root.AddCommand(newDemo(), newInfo())
	// Cobra's completion command prints its help and exits 0 when the
	// shell is missing or unknown: a script saving its output would save
	// the help text. It fails instead.
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c.Name() == "completion" {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("completion needs a shell: bash, zsh, fish or powershell")
			}
			return fmt.Errorf("unknown shell %q: bash, zsh, fish or powershell", args[0])
		}
	}
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
