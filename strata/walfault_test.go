package strata_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// fileFault fails the operations of the given kinds on the files whose
// path contains file, while armed: all of them, or only the first times
// (then the file works again, as a disk whose error passed).
type fileFault struct {
	file  string
	kinds []errorfs.OpKind
	err   error
	times int64 // 0: every time
	armed atomic.Bool
	hits  atomic.Int64
}

func (f *fileFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.Contains(op.Path, f.file) || !slices.Contains(f.kinds, op.Kind) {
		return nil
	}
	if n := f.hits.Add(1); f.times > 0 && n > f.times {
		return nil
	}
	return f.err
}

func (f *fileFault) String() string { return fmt.Sprintf("%s-%v", f.file, f.kinds) }

// recyclingErrorFS is errorfs.FS with a gap closed: errorfs returns a
// recycled file (ReuseForWrite) without its wrapper, so that faults never
// reach the WAL files Pebble recycles, which are all of its WALs after the
// first few. This ReuseForWrite reopens the recycled file through errorfs,
// which opens it for writing from its start without truncating it, as
// recycling does.
type recyclingErrorFS struct{ *errorfs.FS }

func (fs recyclingErrorFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return fs.OpenReadWrite(newname, category)
}

// storeFaults are the ways a WAL fails: a write (a full disk), an fsync,
// the creation of the next WAL file when the memtable rotates, the stat of
// a recycled WAL file that Pebble takes there, or all of these and closing
// too (a disk that is gone); and the ways the MANIFEST fails as a flush
// records its table: a write, an fsync, an fsync that fails three times
// and then works again, or everything.
var storeFaults = []struct {
	name  string
	file  string
	kinds []errorfs.OpKind
	err   error
	times int64
}{
	{"wal-write", ".log", []errorfs.OpKind{errorfs.OpFileWrite}, fmt.Errorf("injected: %w", syscall.ENOSPC), 0},
	{"wal-sync", ".log", syncOps, fmt.Errorf("injected: %w", syscall.EIO), 0},
	{"wal-create", ".log", []errorfs.OpKind{errorfs.OpCreate, errorfs.OpReuseForWrite}, fmt.Errorf("injected: %w", syscall.ENOSPC), 0},
	{"wal-stat", ".log", []errorfs.OpKind{errorfs.OpFileStat}, fmt.Errorf("injected: %w", syscall.EIO), 0},
	{"wal-everything", ".log", everyWriteOp, fmt.Errorf("injected: %w", syscall.EIO), 0},
	{"manifest-write", "MANIFEST-", []errorfs.OpKind{errorfs.OpFileWrite}, fmt.Errorf("injected: %w", syscall.ENOSPC), 0},
	{"manifest-sync", "MANIFEST-", syncOps, fmt.Errorf("injected: %w", syscall.EIO), 0},
	{"manifest-sync-passing", "MANIFEST-", syncOps, fmt.Errorf("injected: %w", syscall.EIO), 3},
	{"manifest-everything", "MANIFEST-", everyWriteOp, fmt.Errorf("injected: %w", syscall.EIO), 0},
}

var (
	syncOps      = []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}
	everyWriteOp = []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo,
		errorfs.OpCreate, errorfs.OpReuseForWrite, errorfs.OpFileStat, errorfs.OpFileClose}
)

// ackedPair is a transaction a writer saw commit: it put key i's "a" and
// "b" at version.
type ackedPair struct {
	i       int
	version uint64
}

// pairKey is the key of part ("a" or "b") of writer g's i-th transaction.
func pairKey(g, i int, part string) []byte { return fmt.Appendf(nil, "g%d-%06d-%s", g, i, part) }

// pairValue is the value of writer g's i-th transaction: 512 bytes, so
// that a 64 KiB memtable rotates every few dozen commits.
func pairValue(g, i int) []byte {
	tag := fmt.Appendf(nil, "%d/%d;", g, i)
	return bytes.Repeat(tag, 512/len(tag)+1)[:512]
}

// A WAL or a MANIFEST that fails, in any durability mode and in any of the
// ways above, fails the database: the process survives (Pebble itself would
// panic, die on a fatal runtime error, stall, or leave a store that cannot
// be opened again; see pebbleadapter/fence.go), every writer gets
// ErrFailed, no commit is acknowledged after the failure, and Close
// returns. Reopened as the failure left it, and after a crash that keeps
// only what was synced, the database opens, holds a prefix of the commit
// order, in which every transaction is whole and every commit reported
// durable (every acknowledged one in Strict mode) is present, and takes
// new commits and a flush.
func TestWALAndManifestFailuresFailTheDatabaseAndReopenToAPrefix(t *testing.T) {
	modes := []strata.DurabilityMode{strata.DurabilityNone, strata.DurabilityBatched, strata.DurabilityStrict}
	for _, mode := range modes {
		for _, fc := range storeFaults {
			t.Run(fmt.Sprintf("%s/%s", mode, fc.name), func(t *testing.T) {
				base := vfs.NewCrashableMem()
				fault := &fileFault{file: fc.file, kinds: fc.kinds, err: fc.err, times: fc.times}
				opts := strata.Options{Path: "db", FS: recyclingErrorFS{errorfs.Wrap(base, fault)}, Durability: mode,
					MemTableSize: strata.MinMemTableSize, SyncInterval: time.Millisecond}
				db, err := strata.OpenWith(opts)
				require.NoError(t, err)
				run := strata.NewRunID()

				const writers, limit = 4, 20000
				acked := make([][]ackedPair, writers)
				var wg sync.WaitGroup
				for g := range writers {
					wg.Go(func() {
						for i := range limit {
							v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
								if err := tx.Put(pairKey(g, i, "a"), value.Bytes(pairValue(g, i))); err != nil {
									return err
								}
								return tx.Put(pairKey(g, i, "b"), value.Bytes(pairValue(g, i)))
							})
							if err != nil {
								require.ErrorIs(t, err, strata.ErrFailed)
								return
							}
							acked[g] = append(acked[g], ackedPair{i, v})
						}
					})
				}
				// Several memtables and, in Batched mode, some background
				// syncs first.
				for (db.CurrentVersion() < 500 || mode == strata.DurabilityBatched && db.DurableVersion() < 250) && db.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				fault.armed.Store(true)
				wg.Wait()
				require.Positive(t, fault.hits.Load(), "the fault fired")
				for g := range writers {
					require.Less(t, len(acked[g]), limit, "writer %d ran into the failure", g)
				}
				durable := db.DurableVersion()
				checkFailedEverywhere(t, db, run)
				fault.armed.Store(false)

				crashed := base.CrashClone(vfs.CrashCloneCfg{})
				for name, fs := range map[string]vfs.FS{"as left": base, "after a crash": crashed} {
					reopened, err := strata.OpenWith(strata.Options{Path: "db", FS: fs})
					require.NoError(t, err, name)
					checkPrefix(t, reopened, run, acked, durable, mode == strata.DurabilityStrict, name)
					for i := range 200 { // a few memtables: flushes, compactions
						_, err := reopened.Put(ctx, run, fmt.Appendf(nil, "after-%d", i), value.Bytes(pairValue(0, i)))
						require.NoError(t, err, name)
					}
					_, err = reopened.Flush(ctx)
					require.NoError(t, err, name)
					require.NoError(t, reopened.Close(), name)
				}
			})
		}
	}
}

// checkPrefix checks that db holds whole transactions of the writers (both
// keys of a transaction or neither), a prefix of each writer's, and a
// prefix of the acknowledged commits in version order, that includes every
// commit at or below durable (every acknowledged commit if allAcked).
func checkPrefix(t *testing.T, db *strata.Database, run strata.RunID, acked [][]ackedPair, durable uint64, allAcked bool, name string) {
	t.Helper()
	present := map[uint64]bool{} // acknowledged versions found
	var newest uint64            // newest version of any transaction found
	for g := range acked {
		gone := -1 // the first transaction of g not found
		// The writer stopped at transaction len(acked[g]), which failed:
		// it may be present or absent.
		for i := 0; i <= len(acked[g]); i++ {
			a, errA := db.Get(ctx, run, pairKey(g, i, "a"))
			b, errB := db.Get(ctx, run, pairKey(g, i, "b"))
			if errA != nil || errB != nil {
				require.ErrorIs(t, errA, strata.ErrNotFound, "%s: writer %d, transaction %d: %v", name, g, i, errA)
				require.ErrorIs(t, errB, strata.ErrNotFound, "%s: writer %d, transaction %d is torn", name, g, i)
				if gone < 0 {
					gone = i
				}
				continue
			}
			require.Negative(t, gone, "%s: writer %d has transaction %d but not %d", name, g, i, gone)
			require.Equal(t, a.Version, b.Version, "%s: writer %d, transaction %d", name, g, i)
			got, _ := a.Value.AsBytes()
			require.Equal(t, pairValue(g, i), got, "%s: writer %d, transaction %d", name, g, i)
			newest = max(newest, a.Version)
			if i < len(acked[g]) {
				require.Equal(t, acked[g][i].version, a.Version, "%s: writer %d, transaction %d", name, g, i)
				present[a.Version] = true
			}
		}
	}
	require.GreaterOrEqual(t, db.CurrentVersion(), durable, name)
	for g, pairs := range acked {
		for _, p := range pairs {
			switch {
			case allAcked || p.version <= durable:
				require.True(t, present[p.version], "%s: writer %d, transaction %d (version %d, durable %d) is lost", name, g, p.i, p.version, durable)
			case p.version < newest:
				require.True(t, present[p.version], "%s: a hole: writer %d, transaction %d (version %d) is missing below version %d", name, g, p.i, p.version, newest)
			}
		}
	}
}
