package pebbleadapter_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/rs/zerolog"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/internal/syncmark"
	"github.com/strata-db/strata/internal/testutil"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

func markKey(i int) []byte {
	return keyenc.AppendVersioned(nil, keyenc.RunID{3}, keyenc.TagKV, fmt.Appendf(nil, "k%04d", i), uint64(i+1))
}

// writeUnsynced applies keys [from, to) without syncing them.
func writeUnsynced(t *testing.T, db *pebbleadapter.DB, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		b := db.NewBatch()
		b.Set(markKey(i), bytes.Repeat([]byte{byte(i)}, 200))
		require.NoError(t, b.Apply(false))
		b.Close()
	}
}

// A crash after a recorded sync barrier, then damage in the WAL before
// that barrier: Pebble v2.1.7 takes damage past the WAL's first block for a
// torn tail (the writes were not synced one by one), and the sync mark is
// what refuses the store. Damage after the last recorded barrier is the
// check's blind spot (see syncmark.go): writes synced within
// syncMarkInterval before the crash can still be lost without an error.
// Without damage the crash image opens with every synced write.
func TestSyncMarkDetectsWALLossAfterCrash(t *testing.T) {
	pebbleadapter.SetSyncMarkInterval(t, time.Hour) // only the first barrier is recorded
	mem := vfs.NewCrashableMem()
	db := openAt(t, mem)
	walSize := func() int64 {
		st, err := mem.Stat(testutil.NewestWAL(t, mem, dir))
		require.NoError(t, err)
		return st.Size()
	}
	writeUnsynced(t, db, 0, 300)
	require.NoError(t, db.SyncBarrier()) // the session's first barrier is recorded at once
	require.Equal(t, uint64(1), testutil.ReadSyncMark(t, mem, dir))
	recorded := walSize()
	writeUnsynced(t, db, 300, 600)
	require.NoError(t, db.SyncBarrier()) // within the interval: not recorded
	require.Equal(t, uint64(1), testutil.ReadSyncMark(t, mem, dir))
	synced := walSize()
	writeUnsynced(t, db, 600, 700)
	crash := func() vfs.FS { return mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}) }
	intact, beforeMark, afterMark := crash(), crash(), crash()
	require.NoError(t, db.Close())

	db = openAt(t, intact)
	for i := range 600 {
		_, err := db.Get(markKey(i))
		require.NoError(t, err, "synced write %d", i)
	}
	require.NoError(t, db.Close())

	require.Greater(t, recorded, int64(2*32<<10), "the recorded barrier is past the WAL's second block")
	testutil.FlipByte(t, beforeMark, testutil.NewestWAL(t, beforeMark, dir), recorded-20<<10)
	_, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: beforeMark})
	require.ErrorIs(t, err, serr.ErrCorruption)
	require.ErrorContains(t, err, "lost synced writes")

	testutil.FlipByte(t, afterMark, testutil.NewestWAL(t, afterMark, dir), (recorded+synced)/2)
	db = openAt(t, afterMark)
	defer db.Close()
	lost := 0
	for i := range 600 {
		if _, err := db.Get(markKey(i)); err != nil {
			require.ErrorIs(t, err, serr.ErrNotFound)
			require.GreaterOrEqual(t, i, 300, "only writes after the recorded barrier are lost")
			lost++
		}
	}
	require.Positive(t, lost, "the blind spot: synced writes lost without an error")
}

// Open and Close, again and again, with and without writes, on one store:
// the store's mark never falls behind the file's (no false alarm), and each
// Close records its own barrier.
func TestSyncMarkAcrossSessions(t *testing.T) {
	mem := vfs.NewMem()
	for session := range 5 {
		db := openAt(t, mem)
		if session%2 == 0 {
			writeUnsynced(t, db, session*10, session*10+10)
		}
		require.NoError(t, db.Close())
		require.Equal(t, uint64(session+1), testutil.ReadSyncMark(t, mem, dir), "session %d", session)
	}
}

// A sync mark file that cannot be written only weakens the check: the
// barrier succeeds, the store stays usable, and the failure is logged once.
func TestSyncMarkFileWriteFailureIsLogged(t *testing.T) {
	mem := vfs.NewMem()
	var armed atomic.Bool // from the first barrier on: Open reads the file
	fail := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && strings.HasSuffix(op.Path, pebbleadapter.SyncMarkFileName) && op.Kind != errorfs.OpFileClose {
			return errorfs.ErrInjected
		}
		return nil
	})
	log := &syncBuffer{}
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: errorfs.Wrap(mem, fail), Logger: zerolog.New(log)})
	require.NoError(t, err)
	armed.Store(true)
	writeUnsynced(t, db, 0, 10)
	require.NoError(t, db.SyncBarrier())
	require.NoError(t, db.Err())
	writeUnsynced(t, db, 10, 20)
	require.NoError(t, db.SyncBarrier())
	require.NoError(t, db.Close())
	require.Equal(t, 1, strings.Count(log.String(), "cannot record the sync mark"), log.String())

	db = openAt(t, mem)
	defer db.Close()
	_, err = db.Get(markKey(19))
	require.NoError(t, err)
}

// A damaged sync mark file, both slots, is refused rather than ignored: it
// cannot vouch for anything, and deleting it is the user's decision.
func TestDamagedSyncMarkFileIsCorruption(t *testing.T) {
	mem := vfs.NewMem()
	for range 2 { // two sessions: both slots written
		require.NoError(t, openAt(t, mem).Close())
	}
	path := mem.PathJoin(dir, pebbleadapter.SyncMarkFileName)
	testutil.FlipByte(t, mem, path, syncmark.SlotOffset(0)+9)
	testutil.FlipByte(t, mem, path, syncmark.SlotOffset(1)+9)
	_, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: mem})
	require.ErrorIs(t, err, serr.ErrCorruption)
	require.ErrorContains(t, err, "both slots are damaged")
}

// A barrier whose mark falls within the interval after the last record is
// recorded once the interval has passed, without waiting for another
// barrier or for Close: the last barrier before a quiet spell is covered.
func TestSyncMarkDeferredRecord(t *testing.T) {
	pebbleadapter.SetSyncMarkInterval(t, 50*time.Millisecond)
	mem := vfs.NewMem()
	db := openAt(t, mem)
	defer db.Close()
	writeUnsynced(t, db, 0, 10)
	require.NoError(t, db.SyncBarrier())
	require.Equal(t, uint64(1), testutil.ReadSyncMark(t, mem, dir), "the session's first barrier is recorded at once")
	writeUnsynced(t, db, 10, 20)
	require.NoError(t, db.SyncBarrier())
	require.Eventually(t, func() bool { return testutil.ReadSyncMark(t, mem, dir) == 2 }, time.Minute, 5*time.Millisecond)
}
