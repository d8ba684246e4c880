package main

import (
	"cmp"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/strata-db/strata/strata"
)

func newInfo() *cobra.Command {
	var detail bool
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Print an existing database's current version and storage metrics",
		Long: `Print an existing database's current version, the sizes of its files and
read amplification (with --detail, Pebble's metrics table too). A path that
holds no database is an error (info never creates one). Like any open,
info's open and close write to the database's own files (a WAL, the version
bound); they change no data.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			path, err := dbPath(cmd)
			if err != nil {
				return err
			}
			if ok, err := hasDatabase(path); err != nil || !ok {
				return cmp.Or(err, fmt.Errorf("no database at %s", path))
			}
			db, err := strata.OpenWithMode(path, strata.DurabilityNone)
			if err != nil {
				return err
			}
			defer closeInto(db, &err)
			m := db.Metrics()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "path             %s\n", db.Path())
			fmt.Fprintf(out, "current version  %d\n", m.CurrentVersion)
			fmt.Fprintf(out, "file sizes       %d bytes (blocks preallocated for the WAL not counted)\n", m.Storage.DiskSpaceUsage)
			fmt.Fprintf(out, "read amp         %d\n", m.Storage.ReadAmp)
			if detail {
				fmt.Fprintln(out, m.Storage.Detail)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&detail, "detail", false, "also print Pebble's metrics table")
	return cmd
}
