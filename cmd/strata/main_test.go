package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"

	"github.com/strata-db/strata/pebbleadapter"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

func TestDemoAndInfo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	for _, mode := range []string{"none", "batched", "strict"} {
		var out bytes.Buffer
		root := newRoot()
		root.SetOut(&out)
		root.SetArgs([]string{"demo", "--db", dir, "--fresh", "-n", "300", "--mode", mode})
		require.NoError(t, root.Execute(), out.String())
		require.Contains(t, out.String(), "all 300 keys verified, event chain verified against the anchor")
	}
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"info", "--db", dir})
	require.NoError(t, root.Execute())
	// 300 puts, 100 CAS, 1 delete, 1 batch of 10 events, a state init and a
	// transition.
	require.True(t, strings.Contains(out.String(), "current version  404"), out.String())

	root = newRoot()
	root.SetArgs([]string{"demo", "--db", dir, "--mode", "async"})
	require.Error(t, root.Execute(), "an unknown mode is refused")
}

// The commands refuse what could lose or invent data: --fresh deletes only
// a Strata database no process has open (or an empty directory), info never
// creates one, and bad arguments are errors.
func TestCommandsRefuseBadTargets(t *testing.T) {
	run := func(args ...string) error {
		root := newRoot()
		root.SetOut(&bytes.Buffer{})
		root.SetArgs(args)
		return root.Execute()
	}
	base := t.TempDir()
	// Flags only, and a path that is not empty.
	require.ErrorContains(t, run("info", "--db", base, "extra"), "strata info takes no arguments")
	require.ErrorContains(t, run("demo", "--db", base, "extra"), "strata demo takes no arguments")
	require.ErrorContains(t, run("info", "--db", ""), "--db needs a path")
	require.ErrorContains(t, run("demo", "--db", ""), "--db needs a path")
	other := filepath.Join(base, "other")
	require.NoError(t, os.MkdirAll(other, 0o755))
	notes := filepath.Join(other, "notes.txt")
	require.NoError(t, os.WriteFile(notes, []byte("keep me"), 0o644))
	require.ErrorContains(t, run("demo", "--db", other, "--fresh", "-n", "10"), "refusing")
	require.FileExists(t, notes, "--fresh left a directory without a database alone")
	require.ErrorContains(t, run("demo", "--db", notes, "--fresh", "-n", "10"), "refusing")
	require.FileExists(t, notes)

	// A database some process has open is not deleted under it.
	ctx, r := context.Background(), strata.NewRunID()
	held := filepath.Join(base, "held")
	db, err := strata.Open(held)
	require.NoError(t, err)
	_, err = db.Put(ctx, r, []byte("k"), value.Int(1))
	require.NoError(t, err)
	require.ErrorIs(t, run("demo", "--db", held, "--fresh", "-n", "10"), strata.ErrLocked)
	require.NoError(t, db.Close())
	db, err = strata.Open(held)
	require.NoError(t, err)
	_, err = db.Get(ctx, r, []byte("k"))
	require.NoError(t, err, "the held database was left whole")
	require.NoError(t, db.Close())
	require.NoError(t, run("demo", "--db", held, "--fresh", "-n", "10"), "once closed, it can go")
	db, err = strata.Open(held)
	require.NoError(t, err)
	_, err = db.Get(ctx, r, []byte("k"))
	require.ErrorIs(t, err, strata.ErrNotFound, "a new database")
	require.NoError(t, db.Close())

	// Nor is another program's Pebble store, which Strata does not open.
	foreign := filepath.Join(base, "foreign")
	pdb, err := pebble.Open(foreign, &pebble.Options{Logger: quietPebble{}})
	require.NoError(t, err)
	require.NoError(t, pdb.Set([]byte("theirs"), []byte("data"), pebble.Sync))
	require.NoError(t, pdb.Close())
	require.ErrorIs(t, run("demo", "--db", foreign, "--fresh", "-n", "10"), strata.ErrCorruption)
	// A refusal leaves the directory as it was: not even a LOCK file.
	junk := filepath.Join(base, "junk")
	require.NoError(t, os.MkdirAll(junk, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(junk, "000001.log"), []byte("not a WAL"), 0o644))
	require.ErrorIs(t, run("demo", "--db", junk, "--fresh", "-n", "10"), strata.ErrCorruption)
	entries, err := os.ReadDir(junk)
	require.NoError(t, err)
	require.Len(t, entries, 1, "--fresh refused but changed the directory")
	pdb, err = pebble.Open(foreign, &pebble.Options{Logger: quietPebble{}})
	require.NoError(t, err)
	v, closer, err := pdb.Get([]byte("theirs"))
	require.NoError(t, err, "the foreign store is intact")
	require.Equal(t, "data", string(v))
	require.NoError(t, closer.Close())
	require.NoError(t, pdb.Close())

	// A damaged Strata database, which Open refuses, is what --fresh is
	// for: it is deleted.
	damaged := filepath.Join(base, "damaged")
	require.NoError(t, run("demo", "--db", damaged, "-n", "10"))
	manifests, err := filepath.Glob(filepath.Join(damaged, "MANIFEST-*"))
	require.NoError(t, err)
	require.NotEmpty(t, manifests)
	for _, m := range manifests {
		require.NoError(t, os.WriteFile(m, []byte("garbage"), 0o644))
	}
	_, err = strata.Open(damaged)
	require.Error(t, err, "the damaged database does not open")
	require.NoError(t, run("demo", "--db", damaged, "--fresh", "-n", "10"))

	// A file of the user's next to a database is never deleted: --fresh
	// refuses and deletes nothing.
	mixed := filepath.Join(base, "mixed")
	require.NoError(t, run("demo", "--db", mixed, "-n", "10"))
	mine := filepath.Join(mixed, "mine.txt")
	require.NoError(t, os.WriteFile(mine, []byte("keep me"), 0o644))
	require.ErrorContains(t, run("demo", "--db", mixed, "--fresh", "-n", "10"), "mine.txt")
	require.FileExists(t, mine)
	db, err = strata.Open(mixed)
	require.NoError(t, err, "the database next to it was left whole")
	require.NoError(t, db.Close())

	// Through a symbolic link, and as ".", --fresh empties the real
	// directory and keeps it; the next demo starts a new database there.
	real := filepath.Join(base, "real")
	require.NoError(t, run("demo", "--db", real, "-n", "10"))
	link := filepath.Join(base, "link")
	require.NoError(t, os.Symlink(real, link))
	require.NoError(t, run("demo", "--db", link, "--fresh", "-n", "10"))
	require.FileExists(t, filepath.Join(real, pebbleadapter.LockFileName), "the new database is in the real directory")
	t.Chdir(real)
	require.NoError(t, run("demo", "--db", ".", "--fresh", "-n", "10"))
	require.DirExists(t, real)

	// A --fresh killed halfway (everything deleted but the OPTIONS files
	// and the lock) can be run again; so can one on a lone LOCK file.
	half := filepath.Join(base, "half")
	require.NoError(t, run("demo", "--db", half, "-n", "10"))
	entries, err = os.ReadDir(half)
	require.NoError(t, err)
	for _, e := range entries {
		if name := e.Name(); name != pebbleadapter.LockFileName && !strings.HasPrefix(name, "OPTIONS-") {
			require.NoError(t, os.Remove(filepath.Join(half, name)))
		}
	}
	require.NoError(t, run("demo", "--db", half, "--fresh", "-n", "10"))
	lone := filepath.Join(base, "lone")
	require.NoError(t, os.MkdirAll(lone, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(lone, pebbleadapter.LockFileName), nil, 0o644))
	require.NoError(t, run("demo", "--db", lone, "--fresh", "-n", "10"))

	missing := filepath.Join(base, "missing")
	require.ErrorContains(t, run("info", "--db", missing), "no database")
	require.NoDirExists(t, missing, "info created nothing")

	require.ErrorContains(t, run("help", "bogus"), "unknown help topic")
	require.NoError(t, run("help", "demo"))
	require.ErrorContains(t, run("completion"), "completion needs a shell")
	require.ErrorContains(t, run("completion", "bahs"), `unknown shell "bahs"`)
	require.NoError(t, run("completion", "bash"))
	require.Error(t, run("demo", "--db", filepath.Join(base, "db"), "extra"))
	require.ErrorContains(t, run("demo", "--db", filepath.Join(base, "db"), "--keys", "-5"), "at least 1")
}

// quietPebble is a Pebble logger that prints nothing (and, unlike Pebble's
// default, never exits the process on Fatalf).
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// Only names Pebble gives its files count as the database's: anything else
// in the directory makes --fresh refuse.
func TestStoreFileNames(t *testing.T) {
	for _, name := range []string{
		"LOCK", "CURRENT", "MANIFEST-000001", "OPTIONS-000008", "000005.sst", "000007.log", "000001.blob",
		"marker.format-version.000011.024", "marker.manifest.000002.MANIFEST-000006",
		"temporary.000003.dbtmp", "CURRENT.000004.dbtmp", "000009-001.log", "STRATA-SYNCMARK",
	} {
		require.True(t, pebbleadapter.IsStoreFile(name), name)
	}
	for _, name := range []string{
		"OPTIONS-backup.ini", "notes.dbtmp", "MANIFEST-", "x.sst", "000005.sst.bak", "marker.", "mine.txt",
		"LOCK.old", "OPTIONS-000008 copy", "marker.format-version.x.024", "",
	} {
		require.False(t, pebbleadapter.IsStoreFile(name), name)
	}
}

// A database that fails as it closes (its last WAL sync, here) fails the
// command: closeInto joins Close's error to the command's, keeping both.
func TestCloseIntoJoinsACloseFailure(t *testing.T) {
	var failSyncs atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if failSyncs.Load() {
				return errorfs.ErrInjected
			}
		}
		return nil
	}))
	open := func() *strata.Database {
		db, err := strata.OpenWith(strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityNone})
		require.NoError(t, err)
		return db
	}

	db := open()
	var err error
	closeInto(db, &err)
	require.NoError(t, err, "a clean close adds nothing")

	cmdErr := errors.New("the command's own error")
	for _, first := range []error{nil, cmdErr} {
		failSyncs.Store(false)
		db := open()
		_, perr := db.Put(context.Background(), strata.NewRunID(), []byte("k"), value.Int(1))
		require.NoError(t, perr)
		failSyncs.Store(true) // Close syncs what None mode left unsynced
		err := first
		closeInto(db, &err)
		require.ErrorIs(t, err, errorfs.ErrInjected, "the close failure is reported")
		if first != nil {
			require.ErrorIs(t, err, cmdErr, "and the command's error kept")
		}
	}
}
