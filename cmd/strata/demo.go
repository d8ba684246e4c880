package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/strata-db/strata/durability"
	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

func newDemo() *cobra.Command {
	var (
		n     int
		mode  string
		fresh bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Write a run, read it back, reopen the database and verify it",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := dbPath(cmd)
			if err != nil {
				return err
			}
			m, err := durability.ParseMode(mode)
			if err != nil {
				return err
			}
			if n < 1 {
				return fmt.Errorf("--keys must be at least 1, not %d", n)
			}
			if fresh {
				if err := removeDatabase(path); err != nil {
					return err
				}
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), path, m, n)
		},
	}
	cmd.Flags().IntVarP(&n, "keys", "n", 20000, "number of keys to write")
	cmd.Flags().StringVar(&mode, "mode", "batched", "durability mode: none, batched or strict")
	cmd.Flags().BoolVar(&fresh, "fresh", false, "delete the database first: every file of it but Pebble's LOCK file, keeping the directory (only a Strata database that no process has open, in a directory that holds nothing else)")
	return cmd
}

// removeDatabase empties the database directory at path for --fresh: it
// deletes the database's files and keeps the directory and Pebble's LOCK
// file (removing a lock file that another process may have locked again
// meanwhile would let two processes open one store). It refuses, and
// deletes nothing, when path is a file, when the directory holds anything
// whose name is not one Pebble gives its files (so a file whose name Pebble
// does not use is never deleted), when the files' OPTIONS record another
// comparer than Strata's or none, and while a process has the database
// open. It works on the directory path resolves to (symbolic links
// followed once, up front), so the lock and the deletions are on one
// directory. A damaged Strata database, and one a killed --fresh left half
// deleted, is deleted like any other: OPTIONS files go last.
func removeDatabase(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("--fresh: %s is not a directory; refusing to delete it", path)
	}
	if path, err = filepath.EvalSymlinks(path); err != nil {
		return err
	}
	files, err := storeFiles(path)
	if err != nil || len(files) == 0 {
		return err // nothing to delete, or a refusal
	}
	// Check whose files they are before locking, so that a refusal leaves
	// the directory as it was (taking the lock creates Pebble's LOCK file).
	if err := checkStrataFiles(path); err != nil {
		return err
	}
	// Take the directory's lock (ErrLocked while a database has it open),
	// then look again, check again, and delete them: until the lock is
	// released, no database can open the directory.
	lock, err := pebbleadapter.LockDirectory(path, nil)
	if err != nil {
		return fmt.Errorf("%w; --fresh refuses to delete it", err)
	}
	err = removeStoreLocked(path)
	if cerr := lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("--fresh: %w", cerr)
	}
	return err
}

// storeFiles returns the names of the store files in the directory path,
// Pebble's LOCK file aside, or refuses if it holds anything else.
func storeFiles(path string) ([]string, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files, foreign []string
	for _, e := range entries {
		switch name := e.Name(); {
		case !e.Type().IsRegular() || !pebbleadapter.IsStoreFile(name):
			foreign = append(foreign, name)
		case name != pebbleadapter.LockFileName:
			files = append(files, name)
		}
	}
	if len(foreign) > 0 {
		return nil, fmt.Errorf("--fresh: %s holds %d entries that are not a database's files (%s); refusing to delete anything",
			path, len(foreign), strings.Join(foreign[:min(len(foreign), 3)], ", "))
	}
	return files, nil
}

// removeStoreLocked deletes the store files of the directory path, once it
// is sure they are Strata's, OPTIONS files last, so that a --fresh killed
// halfway can be run again. The caller holds the lock.
func removeStoreLocked(path string) error {
	files, err := storeFiles(path)
	if err != nil || len(files) == 0 {
		return err
	}
	if err := checkStrataFiles(path); err != nil {
		return err
	}
	last := func(name string) int { // OPTIONS files after everything else
		if strings.HasPrefix(name, "OPTIONS-") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(files, func(a, b string) int { return cmp.Compare(last(a), last(b)) })
	for _, name := range files {
		if err := os.Remove(filepath.Join(path, name)); err != nil {
			return fmt.Errorf("--fresh: %w", err)
		}
	}
	return nil
}

// checkStrataFiles refuses, for --fresh, the store files of the directory
// path unless their OPTIONS record Strata's comparer.
func checkStrataFiles(path string) error {
	if err := pebbleadapter.CheckComparer(path, nil); err != nil {
		return fmt.Errorf("%w; --fresh refuses to delete it (if the files are a Strata database of yours, delete them yourself)", err)
	}
	return nil
}

func demoKey(i int) []byte { return fmt.Appendf(nil, "step/%08d", i) }

func demoValue(i int) strata.Value {
	return value.Object(map[string]strata.Value{
		"step":  value.Int(int64(i)),
		"tool":  value.String("search"),
		"score": value.Float(float64(i) / 7),
	})
}

// runDemo writes n keys into a new run, CAS-updates a counter, deletes a
// key, appends a hash-chained event log and moves a state cell, reads
// everything back, closes, reopens and checks that the reopened database
// holds exactly what was acknowledged and that the event chain verifies
// against the anchor taken before the close.
func runDemo(ctx context.Context, out io.Writer, path string, mode strata.DurabilityMode, n int) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	db, err := strata.OpenWithMode(path, mode)
	if err != nil {
		return err
	}
	defer closeInto(db, &err)
	fmt.Fprintf(out, "database %s (%s), starting at version %d\n", path, db.DurabilityMode(), db.CurrentVersion())

	run := strata.NewRunID()
	start := time.Now()
	var last uint64
	for i := range n {
		if last, err = db.Put(ctx, run, demoKey(i), demoValue(i)); err != nil {
			return err
		}
	}
	el := time.Since(start)
	fmt.Fprintf(out, "run %s: %d puts in %v (%.0f puts/s), last version %d\n", run, n, el.Round(time.Millisecond), float64(n)/el.Seconds(), last)

	counter := []byte("counter")
	var cur uint64
	for i := range 100 {
		if cur, err = db.CAS(ctx, run, counter, cur, value.Int(int64(i+1))); err != nil {
			return err
		}
	}
	if _, err := db.CAS(ctx, run, counter, 1, value.Int(-1)); !isConflict(err) {
		return fmt.Errorf("a stale CAS must conflict, got %v", err)
	}
	if n > 0 {
		if _, err := db.Delete(ctx, run, demoKey(0)); err != nil {
			return err
		}
	}

	// The run's event log: a hash-chained record of what happened, appended
	// in batches; the anchor (the newest event's hash) is what a user would
	// keep elsewhere to verify the log against later.
	nEvents := max(n/100, 10)
	for i := 0; i < nEvents; i += 10 {
		batch := make([]strata.EventData, 0, 10)
		for j := i; j < min(i+10, nEvents); j++ {
			batch = append(batch, strata.EventData{Type: "step.done", Payload: demoValue(j * 100)})
		}
		if _, err := db.AppendEvents(ctx, run, batch); err != nil {
			return err
		}
	}
	anchor, err := db.EventAnchor(ctx, run)
	if err != nil {
		return err
	}
	// A state cell: init, then a pure transition.
	if _, err := db.StateInit(ctx, run, "phase", value.String("running")); err != nil {
		return err
	}
	if _, err := db.StateTransition(ctx, run, "phase", func(strata.State) (strata.Value, error) {
		return value.String("done"), nil
	}); err != nil {
		return err
	}
	if err := verifyDemo(ctx, db, run, n, nEvents, &anchor); err != nil {
		return err
	}
	durable, err := db.Flush(ctx)
	if err != nil {
		return err
	}
	want := db.CurrentVersion()
	fmt.Fprintf(out, "read back %d of %d keys, the deleted one absent: ok; counter at 100 after 100 CAS and one refused stale CAS; %d events chained, anchor %d:%s; flushed, durable version %d\n",
		n-1, n, nEvents, anchor.Sequence, anchor.Hash.String()[:16], durable)
	if err := db.Close(); err != nil {
		return err
	}

	db, err = strata.OpenWithMode(path, mode)
	if err != nil {
		return err
	}
	defer closeInto(db, &err)
	if db.CurrentVersion() != want {
		return fmt.Errorf("reopened at version %d, want %d", db.CurrentVersion(), want)
	}
	if err := verifyDemo(ctx, db, run, n, nEvents, &anchor); err != nil {
		return fmt.Errorf("after reopen: %w", err)
	}
	fmt.Fprintf(out, "reopened at version %d: all %d keys verified, event chain verified against the anchor, state cell at counter 2\n", want, n)
	return nil
}

// closeInto closes db and joins Close's error to *err: a database that
// fails as it closes (its last sync, say) fails the command.
func closeInto(db *strata.Database, err *error) {
	if cerr := db.Close(); cerr != nil {
		*err = errors.Join(*err, cerr)
	}
}

func isConflict(err error) bool {
	var ce *strata.ConflictError
	return errors.As(err, &ce)
}

func verifyDemo(ctx context.Context, db *strata.Database, run strata.RunID, n, nEvents int, anchor *events.Anchor) error {
	for i := range n {
		got, err := db.Get(ctx, run, demoKey(i))
		if i == 0 {
			if !errors.Is(err, strata.ErrNotFound) {
				return fmt.Errorf("deleted key: got %v", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		if !value.Equal(got.Value, demoValue(i)) {
			return fmt.Errorf("key %d: got %v", i, got.Value)
		}
	}
	c, err := db.Get(ctx, run, []byte("counter"))
	if err != nil {
		return err
	}
	if v, _ := c.Value.AsInt(); v != 100 {
		return fmt.Errorf("counter is %v, want 100", c.Value)
	}
	ver, err := db.VerifyEvents(ctx, run, anchor)
	if err != nil {
		return err
	}
	if err := ver.Err(); err != nil {
		return err
	}
	if ver.Length != uint64(nEvents) {
		return fmt.Errorf("event log of %d events, want %d", ver.Length, nEvents)
	}
	st, err := db.StateRead(ctx, run, "phase")
	if err != nil {
		return err
	}
	if s, _ := st.Value.AsString(); s != "done" || st.Counter != 2 {
		return fmt.Errorf("state cell phase is %v at counter %d, want done at 2", st.Value, st.Counter)
	}
	return nil
}
