package strata_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// walSyncFault fails every WAL fsync with EIO while armed.
type walSyncFault struct{ armed atomic.Bool }

func (f *walSyncFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return fmt.Errorf("injected: %w", errorfs.ErrInjected)
	}
	return nil
}

func (f *walSyncFault) String() string { return "wal-sync-eio" }

// checkFailedEverywhere asserts that every call on a failed database returns
// ErrFailed promptly.
func checkFailedEverywhere(t *testing.T, db *strata.Database, run strata.RunID) {
	t.Helper()
	require.False(t, db.IsOpen())
	require.ErrorIs(t, db.Err(), strata.ErrFailed)
	_, err := db.Put(ctx, run, []byte("after"), value.Int(1))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.Get(ctx, run, []byte("before"))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.Delete(ctx, run, []byte("before"))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.CAS(ctx, run, []byte("before"), 0, value.Int(1))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.Flush(ctx)
	require.ErrorIs(t, err, strata.ErrFailed)
	require.ErrorIs(t, db.Shutdown(ctx), strata.ErrFailed)
	require.ErrorIs(t, db.Close(), strata.ErrFailed)
	require.ErrorIs(t, db.Close(), strata.ErrFailed, "Close is idempotent")
	require.ErrorIs(t, db.Shutdown(ctx), strata.ErrFailed, "after Close too")
}

func TestWALSyncFailureFailsCommitAndDatabase(t *testing.T) {
	mem := vfs.NewMem()
	fault := &walSyncFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	run := strata.NewRunID()
	before, err := db.Put(ctx, run, []byte("before"), value.Int(1))
	require.NoError(t, err)
	// Transactions begun before the failure fail with the database too,
	// read-only ones included.
	readOnly, err := db.Begin(ctx, run)
	require.NoError(t, err)
	writer, err := db.Begin(ctx, run)
	require.NoError(t, err)
	require.NoError(t, writer.Put([]byte("pending"), value.Int(3)))

	fault.armed.Store(true)
	v, err := db.Put(ctx, run, []byte("doomed"), value.Int(2))
	require.ErrorIs(t, err, strata.ErrFailed, "a failed fsync is never reported as success")
	require.Zero(t, v)
	require.Equal(t, before, db.CurrentVersion(), "the failed commit never became visible")
	_, err = readOnly.Get([]byte("before"))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = readOnly.List(nil)
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = readOnly.EventLen()
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = readOnly.Commit()
	require.ErrorIs(t, err, strata.ErrFailed, "not even a read-only commit reports success")
	require.ErrorIs(t, writer.Put([]byte("more"), value.Int(4)), strata.ErrFailed)
	_, err = writer.Commit()
	require.ErrorIs(t, err, strata.ErrFailed)
	checkFailedEverywhere(t, db, run)

	// Reopen without the fault: everything acknowledged is there; the
	// failed commit's outcome is unknown (present or absent), as with any
	// fsync failure.
	fault.armed.Store(false)
	db, err = strata.OpenWith(strata.Options{Path: "db", FS: mem, Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	defer db.Close()
	got, err := db.Get(ctx, run, []byte("before"))
	require.NoError(t, err)
	require.Equal(t, before, got.Version)
}

func TestWALSyncFailureUnderConcurrentStrictCommits(t *testing.T) {
	mem := vfs.NewMem()
	fault := &walSyncFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	run := strata.NewRunID()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    = map[string]uint64{}
		failures atomic.Int64
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("g%d-%d", g, i)
				v, err := db.Put(ctx, run, []byte(k), value.Int(int64(i)))
				if err != nil {
					require.ErrorIs(t, err, strata.ErrFailed)
					failures.Add(1)
					return
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}()
	}
	for db.CurrentVersion() < 200 {
		time.Sleep(time.Millisecond)
	}
	fault.armed.Store(true)
	wg.Wait()
	require.Equal(t, int64(8), failures.Load(), "every writer sees the failure")
	checkFailedEverywhere(t, db, run)

	fault.armed.Store(false)
	db, err = strata.OpenWith(strata.Options{Path: "db", FS: mem})
	require.NoError(t, err)
	defer db.Close()
	for k, v := range acked {
		got, err := db.Get(ctx, run, []byte(k))
		require.NoError(t, err, k)
		require.Equal(t, v, got.Version, k)
	}
}

func TestBackgroundSyncFailureFailsBatchedDatabase(t *testing.T) {
	mem := vfs.NewMem()
	fault := &walSyncFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), SyncInterval: time.Millisecond})
	require.NoError(t, err)
	run := strata.NewRunID()
	_, err = db.Put(ctx, run, []byte("before"), value.Int(1))
	require.NoError(t, err)
	fault.armed.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for db.Err() == nil && time.Now().Before(deadline) {
		// Batched commits do not wait for the fsync; the background syncer
		// hits the fault and fails the database.
		_, err = db.Put(ctx, run, []byte("during"), value.Int(2))
		if err != nil {
			require.ErrorIs(t, err, strata.ErrFailed)
		}
		time.Sleep(time.Millisecond)
	}
	require.ErrorIs(t, db.Err(), strata.ErrFailed)
	checkFailedEverywhere(t, db, run)
}

func TestFlushFailureIsReported(t *testing.T) {
	mem := vfs.NewMem()
	fault := &walSyncFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: strata.DurabilityNone})
	require.NoError(t, err)
	run := strata.NewRunID()
	_, err = db.Put(ctx, run, []byte("before"), value.Int(1))
	require.NoError(t, err)
	fault.armed.Store(true)
	_, err = db.Flush(ctx)
	require.ErrorIs(t, err, strata.ErrFailed)
	require.True(t, errors.Is(db.Err(), strata.ErrFailed))
	require.ErrorIs(t, db.Close(), strata.ErrFailed)
	_ = context.Background
}

// sstReadFault fails every read of an sstable with EIO while armed.
type sstReadFault struct{ armed atomic.Bool }

func (f *sstReadFault) MaybeError(op errorfs.Op) error {
	if f.armed.Load() && strings.HasSuffix(op.Path, ".sst") && op.Kind == errorfs.OpFileReadAt {
		return fmt.Errorf("injected: %w", errorfs.ErrInjected)
	}
	return nil
}

func (f *sstReadFault) String() string { return "sst-read-eio" }

// A transaction whose read failed in the storage cannot commit, even if
// its function ignores the error: the read set misses what it could not
// read, so a commit could rest on a value the transaction never saw.
func TestTransactionWithAFailedReadCannotCommit(t *testing.T) {
	fault := &sstReadFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(vfs.NewMem(), fault),
		Durability: strata.DurabilityNone, MemTableSize: strata.MinMemTableSize, CacheSize: 1})
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	for i := range 3000 { // several memtables: the first keys end up in sstables
		_, err := db.Put(ctx, run, fmt.Appendf(nil, "k%04d", i), value.Bytes(make([]byte, 100)))
		require.NoError(t, err)
	}
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	fault.armed.Store(true)
	_, rerr := tx.Get([]byte("k0000"))
	fault.armed.Store(false)
	require.Error(t, rerr, "the read reached an sstable and failed")
	require.ErrorIs(t, rerr, errorfs.ErrInjected)

	_, err = db.Put(ctx, run, []byte("k0000"), value.Int(1)) // what the transaction could not read changes
	require.NoError(t, err)
	require.NoError(t, tx.Put([]byte("derived"), value.Int(2)))
	_, err = tx.Commit()
	require.ErrorIs(t, err, errorfs.ErrInjected, "the failed read stops the commit")
	_, err = db.Get(ctx, run, []byte("derived"))
	require.ErrorIs(t, err, strata.ErrNotFound)

	// Through Transaction, with a function that swallows the error.
	fault.armed.Store(true)
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		_, _ = tx.Get([]byte("k0001"))
		fault.armed.Store(false)
		return tx.Put([]byte("derived"), value.Int(3))
	})
	require.ErrorIs(t, err, errorfs.ErrInjected)
	_, err = db.Get(ctx, run, []byte("derived"))
	require.ErrorIs(t, err, strata.ErrNotFound)
}
