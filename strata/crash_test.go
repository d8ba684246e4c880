package strata

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// crashWorkload runs writers that each put unique keys until stopped, and
// records every acknowledged commit.
type crashWorkload struct {
	db    *Database
	run   RunID
	acked sync.Map // key string -> version
	stop  atomic.Bool
	wg    sync.WaitGroup
}

func startWriters(db *Database, run RunID, writers int) *crashWorkload {
	w := &crashWorkload{db: db, run: run}
	for g := range writers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := 0; !w.stop.Load(); i++ {
				k := fmt.Sprintf("w%02d-%08d", g, i)
				v, err := db.Put(context.Background(), run, []byte(k), value.Int(int64(i)))
				if err != nil {
					return // closed under us
				}
				w.acked.Store(k, v)
			}
		}()
	}
	return w
}

// ackedUpTo returns every acknowledged commit with version <= limit.
func (w *crashWorkload) ackedUpTo(limit uint64) map[string]uint64 {
	out := map[string]uint64{}
	w.acked.Range(func(k, v any) bool {
		if v.(uint64) <= limit {
			out[k.(string)] = v.(uint64)
		}
		return true
	})
	return out
}

// recoveredVersions scans the run and returns version -> key.
func recoveredVersions(t *testing.T, db *Database, run RunID) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	for e, err := range db.store.Scan(keyenc.RunID(run), keyenc.TagKV, nil, nil, db.store.Visible()) {
		require.NoError(t, err)
		_, dup := out[e.Version]
		require.False(t, dup, "version %d written twice", e.Version)
		out[e.Version] = string(e.Key)
	}
	return out
}

// highestVersion returns the highest version among the recovered maps.
func highestVersion(maps ...map[uint64]string) uint64 {
	var n uint64
	for _, m := range maps {
		for v := range m {
			n = max(n, v)
		}
	}
	return n
}

// checkRecovered asserts the crash contract on a reopened database: the
// recovered commits are exactly versions 1..N (a prefix of commit order, no
// holes), every commit in mustKeep is there with its version, and the
// database continues above N (above its version reservation, which is at
// least N).
func checkRecovered(t *testing.T, db *Database, run RunID, mustKeep map[string]uint64) {
	t.Helper()
	got := recoveredVersions(t, db, run)
	n := highestVersion(got)
	require.Equal(t, int(n), len(got), "recovered versions must be exactly 1..%d", n)
	require.GreaterOrEqual(t, db.CurrentVersion(), n)
	for v := uint64(1); v <= n; v++ {
		_, ok := got[v]
		require.True(t, ok, "hole at version %d of %d", v, n)
	}
	byKey := map[string]uint64{}
	for v, k := range got {
		byKey[k] = v
	}
	for k, v := range mustKeep {
		require.Equal(t, v, byKey[k], "acknowledged commit %s@%d lost", k, v)
	}
	next, err := db.Put(context.Background(), run, []byte("after-crash"), value.Null())
	require.NoError(t, err)
	require.Greater(t, next, n, "a reopened database continues above the recovered version")
}

func TestCrashRecoveryPerMode(t *testing.T) {
	modes := []DurabilityMode{DurabilityStrict, DurabilityBatched, DurabilityNone}
	percents := []int{0, 50, 100}
	seeds := 3
	if testing.Short() {
		seeds = 1
	}
	for _, mode := range modes {
		for _, pct := range percents {
			for seed := range seeds {
				t.Run(fmt.Sprintf("%s/unsynced=%d/seed=%d", mode, pct, seed), func(t *testing.T) {
					crashOnce(t, mode, pct, uint64(seed))
				})
			}
		}
	}
}

func crashOnce(t *testing.T, mode DurabilityMode, unsyncedPct int, seed uint64) {
	fs := vfs.NewCrashableMem()
	opts := Options{Path: "db", FS: fs, Durability: mode, SyncInterval: 2e6, MaxPendingCommits: 50}
	db, err := OpenWith(opts)
	require.NoError(t, err)
	run := NewRunID()
	w := startWriters(db, run, 4)

	rng := rand.New(rand.NewPCG(seed, uint64(unsyncedPct)))
	// Enough commits to fill several WAL blocks, and in Batched mode to see
	// a few background syncs complete.
	target := 500 + rng.Uint64N(2000)
	for db.CurrentVersion() < target || mode == DurabilityBatched && db.DurableVersion() < target/2 {
		runtime.Gosched()
	}
	// What must survive is fixed before the crash instant: in Strict every
	// acknowledged commit, in Batched everything at or below the durable
	// version reported so far, in None nothing in particular.
	var mustKeep map[string]uint64
	switch mode {
	case DurabilityStrict:
		mustKeep = w.ackedUpTo(keyenc.MaxVersion)
	case DurabilityBatched:
		mustKeep = w.ackedUpTo(db.DurableVersion())
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPct, RNG: rng})

	w.stop.Store(true)
	w.wg.Wait()
	require.NoError(t, db.Close())

	opts.FS = crashed
	db, err = OpenWith(opts)
	require.NoError(t, err, "a crashed database always reopens")
	defer db.Close()
	if mode == DurabilityStrict && unsyncedPct == 0 {
		require.NotEmpty(t, mustKeep)
	}
	t.Logf("acknowledged %d, must keep %d, recovered %d", len(w.ackedUpTo(keyenc.MaxVersion)), len(mustKeep), db.CurrentVersion())
	checkRecovered(t, db, run, mustKeep)
}

// TestCrashBetweenRuns crashes while two runs commit concurrently and checks
// that the recovered state is a prefix across both runs together.
func TestCrashBetweenRuns(t *testing.T) {
	fs := vfs.NewCrashableMem()
	opts := Options{Path: "db", FS: fs, Durability: DurabilityStrict}
	db, err := OpenWith(opts)
	require.NoError(t, err)
	runA, runB := NewRunID(), NewRunID()
	wa, wb := startWriters(db, runA, 2), startWriters(db, runB, 2)
	for db.CurrentVersion() < 300 {
		runtime.Gosched()
	}
	keepA, keepB := wa.ackedUpTo(keyenc.MaxVersion), wb.ackedUpTo(keyenc.MaxVersion)
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 30, RNG: rand.New(rand.NewPCG(7, 7))})
	wa.stop.Store(true)
	wb.stop.Store(true)
	wa.wg.Wait()
	wb.wg.Wait()
	require.NoError(t, db.Close())

	opts.FS = crashed
	db, err = OpenWith(opts)
	require.NoError(t, err)
	defer db.Close()
	a, b := recoveredVersions(t, db, runA), recoveredVersions(t, db, runB)
	n := highestVersion(a, b)
	require.Equal(t, int(n), len(a)+len(b))
	require.GreaterOrEqual(t, db.CurrentVersion(), n)
	for v := uint64(1); v <= n; v++ {
		_, inA := a[v]
		_, inB := b[v]
		require.True(t, inA != inB, "version %d must be in exactly one run", v)
	}
	for _, keep := range []struct {
		got  map[uint64]string
		want map[string]uint64
	}{{a, keepA}, {b, keepB}} {
		byKey := map[string]uint64{}
		for v, k := range keep.got {
			byKey[k] = v
		}
		for k, v := range keep.want {
			require.Equal(t, v, byKey[k])
		}
	}
}

// TestCrashedCommitIsAllOrNothing crashes at every WAL write of a
// multi-key commit and checks that each recovered state holds the whole
// commit or none of it.
func TestCrashedCommitIsAllOrNothing(t *testing.T) {
	for _, pct := range []int{0, 50, 100} {
		fs := vfs.NewCrashableMem()
		opts := Options{Path: "db", FS: fs, Durability: DurabilityNone}
		db, err := OpenWith(opts)
		require.NoError(t, err)
		run := NewRunID()
		var ws []mvccWriteForTest
		for i := range 64 {
			ws = append(ws, mvccWriteForTest{key: binary.BigEndian.AppendUint32([]byte("m"), uint32(i))})
		}
		v := commitMany(t, db, run, ws)
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(1, uint64(pct)))})
		require.NoError(t, db.Close())

		opts.FS = crashed
		db, err = OpenWith(opts)
		require.NoError(t, err)
		got := recoveredKeys(t, db, run)
		if len(got) > 0 {
			require.Len(t, got, len(ws), "all or nothing")
			require.GreaterOrEqual(t, db.CurrentVersion(), v)
		}
		require.NoError(t, db.Close())
	}
}

// TestCrashWithTransactionsInFlight crashes while several goroutines commit
// multi-key transactions and checks that each transaction is wholly present
// or wholly absent after recovery.
func TestCrashWithTransactionsInFlight(t *testing.T) {
	for _, pct := range []int{0, 30, 100} {
		fs := vfs.NewCrashableMem()
		opts := Options{Path: "db", FS: fs, Durability: DurabilityBatched, SyncInterval: time.Millisecond}
		db, err := OpenWith(opts)
		require.NoError(t, err)
		run := NewRunID()
		var stop atomic.Bool
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					id := fmt.Sprintf("t%d-%06d", g, i)
					err := db.Transaction(context.Background(), run, func(tx *Txn) error {
						for part := range 8 {
							if err := tx.Put(fmt.Appendf(nil, "%s/%d", id, part), value.String(id)); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						return // closed under us
					}
				}
			})
		}
		for db.CurrentVersion() < 2000 {
			runtime.Gosched()
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(5, uint64(pct)))})
		stop.Store(true)
		wg.Wait()
		require.NoError(t, db.Close())

		opts.FS = crashed
		db, err = OpenWith(opts)
		require.NoError(t, err)
		parts := map[string]int{}
		for _, k := range recoveredKeys(t, db, run) {
			parts[k[:strings.IndexByte(k, '/')]]++
		}
		for id, n := range parts {
			require.Equal(t, 8, n, "transaction %s recovered with %d of 8 writes", id, n)
		}
		t.Logf("unsynced kept %d%%: %d whole transactions recovered, %d versions", pct, len(parts), db.CurrentVersion())
		require.NoError(t, db.Close())
	}
}

// A version acknowledged before a crash is never handed out again, even
// when the crash loses it: the commit that passes a version reservation is
// synced whatever the durability mode, so the new reservation is durable
// before any version it covers is acknowledged.
func TestCrashNeverReusesAnAcknowledgedVersion(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []DurabilityMode{DurabilityNone, DurabilityBatched} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts := Options{Path: "db", FS: fs, Durability: mode, SyncInterval: time.Hour, MaxPendingCommits: 1 << 30}
			db, err := OpenWith(opts)
			require.NoError(t, err)
			run := NewRunID()
			for db.CurrentVersion() < mvcc.VersionBlock-1 {
				_, err := db.Put(ctx, run, []byte("k"), value.Int(1))
				require.NoError(t, err)
			}
			_, err = db.Flush(ctx)
			require.NoError(t, err)
			var acked uint64
			for range 10 { // across the reservation at VersionBlock
				acked, err = db.Put(ctx, run, []byte("k"), value.Int(2))
				require.NoError(t, err)
			}
			require.Greater(t, acked, uint64(mvcc.VersionBlock))
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			require.NoError(t, db.Close())

			opts.FS = crashed
			db, err = OpenWith(opts)
			require.NoError(t, err)
			defer db.Close()
			v, err := db.Put(ctx, run, []byte("k"), value.Int(3))
			require.NoError(t, err)
			require.Greater(t, v, acked, "the first version after the crash is above every acknowledged one")
		})
	}
}
