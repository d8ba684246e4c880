package mvcc_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/internal/testutil"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

func TestFreshStoreIsAtVersionZero(t *testing.T) {
	ts := newStore(t)
	require.Zero(t, ts.s.Visible())
	require.Zero(t, ts.s.Applied())
	_, found := get(t, ts.s, "k", keyenc.MaxVersion)
	require.False(t, found)
}

func TestVersionsAreAllocatedInOrderAndPublished(t *testing.T) {
	ts := newStore(t)
	var lastTS int64
	for want := uint64(1); want <= 5; want++ {
		c, err := ts.s.Apply([]mvcc.Write{put("k", fmt.Sprint(want))}, want%2 == 0)
		require.NoError(t, err)
		require.Equal(t, want, c.Version)
		require.Equal(t, want, ts.s.Applied(), "applied as soon as Apply returns")
		if want%2 == 0 {
			require.Equal(t, want-1, ts.s.Visible(), "a synced commit is not visible before its fsync")
		} else {
			require.Equal(t, want, ts.s.Visible(), "an unsynced commit is visible once applied")
		}
		require.GreaterOrEqual(t, c.Timestamp, lastTS, "timestamps never decrease")
		lastTS = c.Timestamp

		require.NoError(t, c.SyncWait())
		require.NoError(t, c.Publish())
		require.Equal(t, want, ts.s.Visible())

		rec, found := get(t, ts.s, "k", ts.s.Visible())
		require.True(t, found)
		require.Equal(t, want, rec.Version)
		require.Equal(t, c.Timestamp, rec.Timestamp, "the record carries its commit's timestamp")
		require.Equal(t, fmt.Sprint(want), string(rec.Payload))
	}
}

// Every write of a write set lands at the one commit version.
func TestWriteSetIsAppliedAtOneVersion(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("x", "old"))
	c := commit(t, ts.s, put("a", "1"), put("b", "2"), del("x"),
		mvcc.Write{Run: runB, Tag: keyenc.TagState, Key: []byte("a"), Kind: keyenc.KindValue, Payload: []byte{0x01}})
	require.Equal(t, uint64(2), c.Version)
	for _, k := range []string{"a", "b", "x"} {
		rec, found := get(t, ts.s, k, 2)
		require.True(t, found, k)
		require.Equal(t, uint64(2), rec.Version, k)
		_, found = get(t, ts.s, k, 1)
		require.Equal(t, k == "x", found, k)
	}
	rec, found, err := ts.s.Get(runB, keyenc.TagState, []byte("a"), 2)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, keyenc.KindValue, rec.Kind)
	require.Equal(t, uint64(2), rec.Version)
}

// An empty write set still takes a version (it records only the version
// counter).
func TestEmptyWriteSetTakesAVersion(t *testing.T) {
	ts := newStore(t)
	require.Equal(t, uint64(1), commit(t, ts.s).Version)
	require.Equal(t, uint64(2), commit(t, ts.s, put("k", "v")).Version)
}

func TestApplyCopiesTheWriteSet(t *testing.T) {
	ts := newStore(t)
	ws := []mvcc.Write{put("key", "payload")}
	c, err := ts.s.Apply(ws, false)
	require.NoError(t, err)
	copy(ws[0].Key, "XXX")
	copy(ws[0].Payload, "XXXXXXX")
	require.NoError(t, c.Publish())

	rec, found := get(t, ts.s, "key", 1)
	require.True(t, found)
	require.Equal(t, "payload", string(rec.Payload))

	// The returned payload is the caller's: changing it changes nothing stored.
	rec.Payload[0] = 'X'
	again, _ := get(t, ts.s, "key", 1)
	require.Equal(t, "payload", string(again.Payload))
}

func TestReopenRecoversLastVersion(t *testing.T) {
	ts := newStore(t)
	for i := range 3 {
		commit(t, ts.s, put("k", fmt.Sprint(i+1)))
	}
	ts.reopen(t)
	require.Equal(t, uint64(3), ts.s.Visible())
	require.Equal(t, uint64(3), ts.s.Applied())

	c := commit(t, ts.s, put("k", "4"))
	require.Equal(t, uint64(4), c.Version, "versions continue above the recovered one")
	for v := uint64(1); v <= 4; v++ {
		rec, found := get(t, ts.s, "k", v)
		require.True(t, found)
		require.Equal(t, v, rec.Version)
		require.Equal(t, fmt.Sprint(v), string(rec.Payload))
	}

	// Reopening twice in a row changes nothing.
	ts.reopen(t)
	ts.reopen(t)
	require.Equal(t, uint64(4), ts.s.Visible())
}

// The version record is written in the same batch as the commit: a commit
// that reached the WAL is recovered on reopen even if it was never published
// (after a restart there is no one left waiting to publish it).
func TestReopenRecoversAppliedButUnpublishedCommit(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("k", "1"))
	c, err := ts.s.Apply([]mvcc.Write{put("k", "2")}, true)
	require.NoError(t, err)
	require.Equal(t, uint64(1), ts.s.Visible())
	require.NoError(t, c.SyncWait()) // durable, never published

	ts.reopen(t)
	require.Equal(t, uint64(2), ts.s.Visible())
	rec, found := get(t, ts.s, "k", ts.s.Visible())
	require.True(t, found)
	require.Equal(t, "2", string(rec.Payload))
	require.Equal(t, uint64(3), commit(t, ts.s, put("k", "3")).Version)
}

func TestOpenRejectsCorruptVersionRecord(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("k", "1"))
	b := ts.db.NewBatch()
	b.Set(keyenc.SystemKey(keyenc.SysLastVersion), []byte{1, 2, 3})
	require.NoError(t, b.Apply(true))
	require.NoError(t, b.SyncWait())
	b.Close()

	_, err := mvcc.Open(ts.db)
	require.ErrorIs(t, err, serr.ErrCorruption)
}

// Get at snapshot S returns the newest version <= S. Key k is written at
// versions 1..7 (deleted at 4), interleaved with commits to other keys, so
// that k's versions are not contiguous.
func TestGetAtSnapshot(t *testing.T) {
	ts := newStore(t)
	type kv struct {
		version uint64
		deleted bool
		payload string
	}
	var history []kv // k's versions
	plan := []mvcc.Write{
		put("k", "one"), put("j", "x"), put("k", "three"), del("k"), put("k\x00", "y"),
		put("k", "six"), put("j", "z"), put("k", ""), put("kk", "w"),
	}
	for _, w := range plan {
		c := commit(t, ts.s, w)
		if string(w.Key) == "k" {
			history = append(history, kv{c.Version, w.Kind == keyenc.KindTombstone, string(w.Payload)})
		}
	}
	maxV := ts.s.Visible()
	require.Equal(t, uint64(len(plan)), maxV)

	for at := uint64(0); at <= maxV+2; at++ {
		var want *kv
		for i := range history {
			if history[i].version <= at {
				want = &history[i]
			}
		}
		rec, found := get(t, ts.s, "k", at)
		if want == nil {
			require.False(t, found, "no version of k at or below %d", at)
			continue
		}
		require.True(t, found, "at %d", at)
		require.Equal(t, want.version, rec.Version, "at %d", at)
		require.Equal(t, want.deleted, rec.Deleted(), "at %d", at)
		if want.deleted {
			require.Equal(t, keyenc.KindTombstone, rec.Kind)
			require.Empty(t, rec.Payload)
		} else {
			require.Equal(t, keyenc.KindBytes, rec.Kind)
			require.Equal(t, want.payload, string(rec.Payload))
		}
	}

	// MaxVersion reads the newest version.
	rec, found := get(t, ts.s, "k", keyenc.MaxVersion)
	require.True(t, found)
	require.Equal(t, history[len(history)-1].version, rec.Version)

	// Keys that share a prefix with k are distinct keys.
	_, found = get(t, ts.s, "", keyenc.MaxVersion)
	require.False(t, found)
	rec, found = get(t, ts.s, "k\x00", keyenc.MaxVersion)
	require.True(t, found)
	require.Equal(t, "y", string(rec.Payload))
	rec, found = get(t, ts.s, "kk", keyenc.MaxVersion)
	require.True(t, found)
	require.Equal(t, "w", string(rec.Payload))

	// Other runs and tags do not see k.
	for _, rt := range []struct {
		run keyenc.RunID
		tag keyenc.Tag
	}{{runB, keyenc.TagKV}, {runA, keyenc.TagState}} {
		_, found, err := ts.s.Get(rt.run, rt.tag, []byte("k"), keyenc.MaxVersion)
		require.NoError(t, err)
		require.False(t, found)
	}
}

// Reads are the same whether the versions are in the memtable, in sstables
// or spread over both.
func TestGetAcrossFlushes(t *testing.T) {
	ts := newStore(t)
	long := make([]byte, 300) // longer than Get's stack buffer
	for i := range long {
		long[i] = byte(i)
	}
	for v := uint64(1); v <= 6; v++ {
		commit(t, ts.s, put("k", fmt.Sprint(v)), put(string(long), fmt.Sprint(v)))
		if v%2 == 0 {
			require.NoError(t, ts.db.FlushMemtable())
		}
	}
	commit(t, ts.s, put("other", "x")) // 7, in the memtable
	for at := uint64(1); at <= 7; at++ {
		for _, k := range []string{"k", string(long)} {
			rec, found := get(t, ts.s, k, at)
			require.True(t, found)
			require.Equal(t, min(at, 6), rec.Version)
			require.Equal(t, fmt.Sprint(min(at, 6)), string(rec.Payload))
		}
	}
}

// History yields every version at or below at, newest first, tombstones
// included, and nothing of neighbouring keys.
func TestHistory(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("k", "a"))     // 1
	commit(t, ts.s, put("k\x00", "n")) // 2: a neighbour
	commit(t, ts.s, del("k"))          // 3
	commit(t, ts.s, put("k", "b"))     // 4
	commit(t, ts.s, put("j", "n"))     // 5
	commit(t, ts.s, put("k", "c"))     // 6
	commit(t, ts.s, put("", "n"))      // 7
	require.NoError(t, ts.db.FlushMemtable())
	commit(t, ts.s, put("k", "d")) // 8
	type ver struct {
		v       uint64
		deleted bool
		payload string
	}
	all := []ver{{8, false, "d"}, {6, false, "c"}, {4, false, "b"}, {3, true, ""}, {1, false, "a"}}

	for at := uint64(0); at <= 9; at++ {
		var want []ver
		for _, x := range all {
			if x.v <= at {
				want = append(want, x)
			}
		}
		var got []ver
		for rec, err := range ts.s.History(runA, keyenc.TagKV, []byte("k"), at) {
			require.NoError(t, err)
			got = append(got, ver{rec.Version, rec.Deleted(), string(rec.Payload)})
		}
		require.Equal(t, want, got, "history at %d", at)
	}

	// Stopping early is fine and leaks nothing (Close would report a leaked
	// iterator).
	n := 0
	for range ts.s.History(runA, keyenc.TagKV, []byte("k"), keyenc.MaxVersion) {
		n++
		break
	}
	require.Equal(t, 1, n)

	for rec, err := range ts.s.History(runA, keyenc.TagKV, []byte("absent"), keyenc.MaxVersion) {
		t.Fatalf("history of an absent key yielded %+v, %v", rec, err)
	}
	require.NoError(t, ts.db.Close())
}

// A corrupt record is reported, not skipped or decoded as something else.
func TestReadsReportCorruptRecords(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("k", "v"))
	b := ts.db.NewBatch()
	b.Set(keyenc.AppendVersioned(nil, runA, keyenc.TagKV, []byte("k"), 2), []byte{9, 9})
	require.NoError(t, b.Apply(false))
	b.Close()
	// Bytes written behind the store's back are only seen by a store opened
	// after them (as when a tool edits a closed database).
	ts.reopen(t)

	_, found, err := ts.s.Get(runA, keyenc.TagKV, []byte("k"), 2)
	require.ErrorIs(t, err, serr.ErrCorruption)
	require.False(t, found)
	rec, found := get(t, ts.s, "k", 1)
	require.True(t, found, "older versions still read")
	require.Equal(t, "v", string(rec.Payload))

	var errs []error
	var keys []string
	for e, err := range ts.s.Scan(runA, keyenc.TagKV, nil, nil, 2) {
		errs = append(errs, err)
		keys = append(keys, string(e.Key))
	}
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], serr.ErrCorruption)
	require.Equal(t, []string{"k"}, keys, "the error names the key of the bad record")

	errs = nil
	for _, err := range ts.s.History(runA, keyenc.TagKV, []byte("k"), 2) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1, "History stops at the first error")
	require.ErrorIs(t, errs[0], serr.ErrCorruption)
}

// A storage failure refuses the commit: Apply returns ErrFailed and the
// version it would have taken is not counted as applied.
func TestApplyOnFailedDatabase(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("k", "1"))
	cause := errors.New("disk gone")
	ts.db.Fail(cause)

	c, err := ts.s.Apply([]mvcc.Write{put("k", "2")}, false)
	require.ErrorIs(t, err, serr.ErrFailed)
	require.ErrorIs(t, err, cause)
	require.Nil(t, c)
	require.Equal(t, uint64(1), ts.s.Applied())
	require.Equal(t, uint64(1), ts.s.Visible())
}

// A commit applied before the database failed but published after it is
// reported as failed by Publish: its caller must not acknowledge it.
func TestPublishOnFailedDatabase(t *testing.T) {
	ts := newStore(t)
	c, err := ts.s.Apply([]mvcc.Write{put("k", "1")}, false)
	require.NoError(t, err)
	ts.db.Fail(errors.New("disk gone"))
	require.ErrorIs(t, c.Publish(), serr.ErrFailed)
}

// lastVersionRecord reads the last-version record through the adapter.
func lastVersionRecord(t *testing.T, ts *testStore) uint64 {
	t.Helper()
	raw, err := ts.db.Get(keyenc.SystemKey(keyenc.SysLastVersion))
	require.NoError(t, err)
	v, err := keyenc.DecodeUint64(raw)
	require.NoError(t, err)
	return v
}

// The last-version record reserves a block of versions: Open writes it a
// block ahead, then only the first commit above the reservation rewrites
// it (synced), and a restart without Close continues above the
// reservation, never below a recovered version.
func TestVersionReservation(t *testing.T) {
	ts := newStore(t)
	require.Equal(t, uint64(mvcc.VersionBlock), lastVersionRecord(t, ts), "Open reserves a block ahead")
	require.NoError(t, ts.s.SetVersionBlock(4))
	require.Equal(t, uint64(4), lastVersionRecord(t, ts))
	for i := range 4 {
		c := commit(t, ts.s, put("k", fmt.Sprint(i+1)))
		require.False(t, c.Synced(), "a commit within the reservation asked for no sync and gets none")
	}
	require.Equal(t, uint64(4), lastVersionRecord(t, ts))

	// The commit that passes the reservation carries the new one and is
	// synced, though it asked for no sync: it, and every later commit, is
	// visible only once that fsync is confirmed.
	c5 := apply(t, ts.s, false, put("k", "5"))
	require.True(t, c5.Synced())
	c6 := apply(t, ts.s, false, put("k", "6"))
	require.False(t, c6.Synced())
	p6 := publishAsync(c6)
	requireVisibleStays(t, ts.s, 4, p6)
	require.NoError(t, c5.SyncWait())
	require.NoError(t, testutil.WaitFor(t, p6))
	require.NoError(t, c5.Publish())
	require.Equal(t, uint64(8), lastVersionRecord(t, ts), "version 5 reserved 5-8")

	ts.restart(t) // no Close: the reservation is what survives
	require.Equal(t, uint64(8), ts.s.Visible())
	for v := uint64(1); v <= 6; v++ {
		rec, found := get(t, ts.s, "k", v)
		require.True(t, found)
		require.Equal(t, fmt.Sprint(v), string(rec.Payload))
	}
	rec, _ := get(t, ts.s, "k", 8)
	require.Equal(t, uint64(6), rec.Version, "versions 7-8 were never used")
	require.Equal(t, uint64(8+mvcc.VersionBlock), lastVersionRecord(t, ts), "Open reserves a block above the recovered bound")
	c := commit(t, ts.s, put("k", "9"))
	require.Equal(t, uint64(9), c.Version)

	require.NoError(t, ts.s.Close())
	require.Equal(t, uint64(9), lastVersionRecord(t, ts), "Close records the exact last version")
	ts.restart(t)
	require.Equal(t, uint64(9), ts.s.Visible())
	require.Equal(t, uint64(10), commit(t, ts.s, put("k", "10")).Version)
}

// After a crash that loses unsynced WAL data, the recovered reservation is
// at or above every recovered version: the record travels in the batch of
// the first version it covers, and the WAL keeps a prefix of batches.
func TestVersionReservationSurvivesCrash(t *testing.T) {
	for seed := range uint64(20) {
		fs := vfs.NewCrashableMem()
		db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
		require.NoError(t, err)
		s, err := mvcc.Open(db)
		require.NoError(t, err)
		require.NoError(t, s.SetVersionBlock(3))
		for i := range 40 {
			c, err := s.Apply([]mvcc.Write{put(fmt.Sprint(i), "v")}, i%10 == 0)
			require.NoError(t, err)
			require.NoError(t, c.SyncWait())
			require.NoError(t, c.Publish())
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, seed))})
		require.NoError(t, db.Close())

		db, err = pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: crashed})
		require.NoError(t, err)
		s, err = mvcc.Open(db)
		require.NoError(t, err)
		// Versions are i+1; commit 30 (version 31) was synced.
		var highest uint64
		for i := range 40 {
			rec, found, err := s.Get(runA, keyenc.TagKV, []byte(fmt.Sprint(i)), keyenc.MaxVersion)
			require.NoError(t, err)
			if i <= 30 {
				require.True(t, found, "seed %d: synced version %d lost", seed, i+1)
			}
			if found {
				require.Equal(t, highest+1, rec.Version, "seed %d: recovered versions are a prefix", seed)
				highest = rec.Version
			}
		}
		require.GreaterOrEqual(t, s.Visible(), highest, "seed %d", seed)
		c, err := s.Apply([]mvcc.Write{put("next", "v")}, false)
		require.NoError(t, err)
		require.Greater(t, c.Version, highest, "seed %d", seed)
		require.NoError(t, c.Publish())
		require.NoError(t, db.Close())
	}
}
