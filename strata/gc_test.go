package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---- Helpers ----

// gcOpen opens a database on a fresh MemFS, closed at the end of the test.
func gcOpen(t *testing.T) (*Database, RunID) {
	t.Helper()
	db, err := OpenWith(Options{Path: "db", FS: vfs.NewMem(), Durability: DurabilityNone})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db, NewRunID()
}

// gcWrites numbers the values gcWrite writes, per database, run and key.
var gcWrites sync.Map // string -> *atomic.Int64

// gcWrite puts n successive values "key#i" under key (i counts the key's
// puts through gcWrite, from 0) and returns their versions, oldest first.
func gcWrite(t *testing.T, db *Database, run RunID, key string, n int) []uint64 {
	t.Helper()
	c, _ := gcWrites.LoadOrStore(fmt.Sprintf("%p/%s/%s", db.store, run, key), new(atomic.Int64))
	var vs []uint64
	for range n {
		i := c.(*atomic.Int64).Add(1) - 1
		v, err := db.Put(context.Background(), run, []byte(key), value.String(fmt.Sprintf("%s#%d", key, i)))
		require.NoError(t, err)
		vs = append(vs, v)
	}
	return vs
}

// gcStored returns the stored versions of (tag, key), newest first, read
// straight from the store: what GC left.
func gcStored(t *testing.T, db *Database, run RunID, tag keyenc.Tag, key string) []uint64 {
	t.Helper()
	var out []uint64
	for rec, err := range db.store.History(keyenc.RunID(run), tag, []byte(key), keyenc.MaxVersion) {
		require.NoError(t, err)
		out = append(out, rec.Version)
	}
	return out
}

// gcHistory returns the history of a KV key through the public API, newest
// first, as "value@version" ("-@version" for a deletion).
func gcHistory(t *testing.T, db *Database, run RunID, key string) []string {
	t.Helper()
	h, err := db.History(context.Background(), run, []byte(key), HistoryOptions{})
	require.NoError(t, err)
	var out []string
	for _, e := range h {
		out = append(out, gcShow(e.Value, e.Deleted)+fmt.Sprintf("@%d", e.Version))
	}
	return out
}

func gcShow(v Value, deleted bool) string {
	if deleted {
		return "-"
	}
	if s, ok := v.AsString(); ok {
		return s
	}
	return v.String()
}

// gcSetRetention sets a policy that must be accepted.
func gcSetRetention(t *testing.T, db *Database, run RunID, r Retention) {
	t.Helper()
	require.NoError(t, db.SetRetention(context.Background(), run, r))
	got, err := db.Retention(context.Background(), run)
	require.NoError(t, err)
	require.Equal(t, r, got)
}

// gcRun runs a GC pass that must succeed.
func gcRun(t *testing.T, db *Database, run RunID) GCStats {
	t.Helper()
	st, err := db.GC(context.Background(), run)
	require.NoError(t, err)
	return st
}

// ---- Policies and records ----

func TestRetentionValidate(t *testing.T) {
	for _, tc := range []struct {
		r  Retention
		ok bool
	}{
		{KeepAll(), true},
		{Retention{}, true},
		{KeepLast(1), true},
		{KeepLast(1 << 40), true},
		{KeepFor(time.Nanosecond), true},
		{KeepFor(24 * time.Hour), true},
		{KeepLast(0), false},
		{KeepLast(-1), false},
		{KeepFor(0), false},
		{KeepFor(-time.Second), false},
		{Retention{Mode: RetainAll, Last: 1}, false},
		{Retention{Mode: RetainAll, For: time.Second}, false},
		{Retention{Mode: RetainLast, Last: 2, For: time.Second}, false},
		{Retention{Mode: RetainFor, For: time.Second, Last: 2}, false},
		{Retention{Mode: RetainLast, For: time.Second}, false},
		{Retention{Mode: RetainFor, Last: 2}, false},
		{Retention{Mode: 3}, false},
		{Retention{Mode: 255, Last: 1}, false},
	} {
		t.Run(fmt.Sprintf("%s/%d/%v", tc.r.Mode, tc.r.Last, tc.r.For), func(t *testing.T) {
			err := tc.r.Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalidOptions)
			}
		})
	}
}

// SetRetention refuses an invalid policy and leaves the stored one alone;
// every GC entry point refuses the nil run id.
func TestSetRetentionRejectsInvalidPolicies(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	got, err := db.Retention(ctx, run)
	require.NoError(t, err)
	require.Equal(t, KeepAll(), got, "a run with no policy keeps everything")

	gcSetRetention(t, db, run, KeepLast(7))
	before := db.CurrentVersion()
	for _, r := range []Retention{
		KeepLast(0), KeepLast(-3), KeepFor(0), KeepFor(-time.Minute),
		{Mode: RetainAll, Last: 1}, {Mode: RetainLast, Last: 1, For: time.Second}, {Mode: RetainFor, For: time.Second, Last: 1},
		{Mode: 3}, {Mode: 42, Last: 1},
	} {
		require.ErrorIs(t, db.SetRetention(ctx, run, r), ErrInvalidOptions, "%+v", r)
	}
	require.Equal(t, before, db.CurrentVersion(), "a refused policy writes nothing")
	got, err = db.Retention(ctx, run)
	require.NoError(t, err)
	require.Equal(t, KeepLast(7), got)

	// Every valid policy reads back as it was set, the extremes included.
	for _, r := range []Retention{KeepLast(math.MaxInt), KeepLast(1<<62 + 1), KeepFor(math.MaxInt64), KeepAll()} {
		gcSetRetention(t, db, run, r)
		got, err = db.Retention(ctx, run)
		require.NoError(t, err)
		require.Equal(t, r, got)
		_, err = db.GC(ctx, run)
		require.NoError(t, err)
	}

	require.ErrorIs(t, db.SetRetention(ctx, RunID{}, KeepLast(1)), ErrInvalidRunID)
	_, err = db.Retention(ctx, RunID{})
	require.ErrorIs(t, err, ErrInvalidRunID)
	_, err = db.GC(ctx, RunID{})
	require.ErrorIs(t, err, ErrInvalidRunID)
}

func TestRetentionModeString(t *testing.T) {
	require.Equal(t, "all", RetainAll.String())
	require.Equal(t, "last", RetainLast.String())
	require.Equal(t, "for", RetainFor.String())
	require.Equal(t, "RetentionMode(9)", RetentionMode(9).String())
}

// The stored records, byte for byte (docs/format.md).
func TestRetentionRecordFormat(t *testing.T) {
	for _, tc := range []struct {
		r   Retention
		hex string
	}{
		{KeepAll(), "01000000000000000000"},
		{KeepLast(3), "01010000000000000003"},
		{KeepLast(1 << 62), "01014000000000000000"},
		{KeepLast(math.MaxInt), "01017fffffffffffffff"},
		{KeepFor(time.Second), "0102000000003b9aca00"},
	} {
		enc := appendRetention(nil, tc.r)
		require.Equal(t, tc.hex, fmt.Sprintf("%x", enc), "%+v", tc.r)
		got, err := decodeRetention(enc)
		require.NoError(t, err)
		require.Equal(t, tc.r, got)
	}
	for _, bad := range []string{
		"", "01", "0101000000000000000300", "02010000000000000003", // length, record version
		"01000000000000000001", // keep-all with a parameter
		"01010000000000000000", // keep-last 0
		"01018000000000000000", // keep-last above the largest int
		"01020000000000000000", // keep-for 0
		"01028000000000000000", // keep-for negative
		"01030000000000000001", // unknown mode
	} {
		var b []byte
		_, err := fmt.Sscanf(bad, "%x", &b)
		if bad != "" {
			require.NoError(t, err)
		}
		_, err = decodeRetention(b)
		require.ErrorIs(t, err, ErrCorruption, "%s", bad)
	}

	require.Equal(t, "01000000000000002a", fmt.Sprintf("%x", appendHorizon(nil, 42)))
	h, err := decodeHorizon(appendHorizon(nil, 42))
	require.NoError(t, err)
	require.Equal(t, uint64(42), h)
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 1}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 1}} {
		_, err := decodeHorizon(bad)
		require.ErrorIs(t, err, ErrCorruption, "%x", bad)
	}
}

// ---- What GC removes ----

// With the default policy GC removes nothing and reports no horizon.
func TestGCDefaultPolicyRemovesNothing(t *testing.T) {
	db, run := gcOpen(t)
	gcWrite(t, db, run, "k", 5)
	_, err := db.StateSet(context.Background(), run, "cell", value.Int(1))
	require.NoError(t, err)
	require.Equal(t, GCStats{}, gcRun(t, db, run))
	require.Len(t, gcHistory(t, db, run, "k"), 5)

	// Going back to KeepAll after another policy stops removals too.
	gcSetRetention(t, db, run, KeepLast(1))
	gcSetRetention(t, db, run, KeepAll())
	gcWrite(t, db, run, "k", 1)
	require.Equal(t, GCStats{}, gcRun(t, db, run))
	require.Len(t, gcHistory(t, db, run, "k"), 6)
}

// Every pass that removes something commits the horizon record; the passes
// remove its older versions, so they do not pile up, and the newest one is
// what a reopened database loads.
func TestGCHorizonRecordDoesNotAccumulate(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	db, err := OpenWith(Options{Path: "db", FS: fs, Durability: DurabilityNone})
	require.NoError(t, err)
	run := NewRunID()
	gcSetRetention(t, db, run, KeepLast(1))
	var last GCStats
	for range 5 {
		gcWrite(t, db, run, "k", 2)
		_, err := db.StateSet(ctx, run, "cell", value.Int(1))
		require.NoError(t, err)
		_, err = db.AppendEvent(ctx, run, "e", value.Object(nil))
		require.NoError(t, err)
		st := gcRun(t, db, run)
		require.Positive(t, st.Removed)
		require.Greater(t, st.Horizon, last.Horizon)
		last = st
		require.Len(t, gcStored(t, db, run, keyenc.TagRunMeta, string(horizonKey)), 1, "only the newest horizon record stays")
	}
	// The other metadata records keep their versions: the retention record
	// its one, the log head the newest (KeepLast(1)).
	require.Len(t, gcStored(t, db, run, keyenc.TagRunMeta, string(retentionKey)), 1)
	require.Len(t, gcStored(t, db, run, keyenc.TagRunMeta, string(eventHeadKey)), 1)
	n, err := db.EventLen(ctx, run)
	require.NoError(t, err)
	require.Equal(t, uint64(5), n)
	require.NoError(t, db.Close())

	db, err = OpenWith(Options{Path: "db", FS: fs, Durability: DurabilityNone})
	require.NoError(t, err)
	defer db.Close()
	h, err := db.gcHorizon(run)
	require.NoError(t, err)
	require.Equal(t, last.Horizon, h, "the reopened database loads the newest horizon")
	_, err = db.GetAt(ctx, run, []byte("k"), h-1)
	require.ErrorIs(t, err, ErrHistoryTrimmed)
}

func TestGCKeepLast(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	vs := gcWrite(t, db, run, "k", 5)
	gcSetRetention(t, db, run, KeepLast(2))

	st := gcRun(t, db, run)
	require.Equal(t, GCStats{Keys: 1, Removed: 3, Horizon: vs[3]}, st, "the horizon is the oldest kept version")
	require.Equal(t, []string{fmt.Sprintf("k#4@%d", vs[4]), fmt.Sprintf("k#3@%d", vs[3])}, gcHistory(t, db, run, "k"))
	require.Equal(t, []uint64{vs[4], vs[3]}, gcStored(t, db, run, keyenc.TagKV, "k"))
	got, err := db.Get(ctx, run, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "k#4", gcShow(got.Value, false))
	require.Equal(t, vs[4], got.Version)

	// A second pass finds nothing more to remove.
	require.Equal(t, GCStats{Keys: 1, Removed: 0, Horizon: vs[3]}, gcRun(t, db, run))

	// New writes are pruned by the next pass, and the horizon moves up.
	more := gcWrite(t, db, run, "k", 2)
	require.Equal(t, GCStats{Keys: 1, Removed: 2, Horizon: more[0]}, gcRun(t, db, run))
	require.Equal(t, []string{fmt.Sprintf("k#6@%d", more[1]), fmt.Sprintf("k#5@%d", more[0])}, gcHistory(t, db, run, "k"))
}

// Keys with fewer versions than the policy keeps, deleted keys and several
// keys in one pass.
func TestGCKeepLastManyKeys(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	one := gcWrite(t, db, run, "one", 1)
	three := gcWrite(t, db, run, "three", 3)
	gone := gcWrite(t, db, run, "gone", 2)
	existed, err := db.Delete(ctx, run, []byte("gone"))
	require.NoError(t, err)
	require.True(t, existed)
	gcSetRetention(t, db, run, KeepLast(1))

	st := gcRun(t, db, run)
	require.Equal(t, int64(3), st.Keys)
	require.Equal(t, int64(2+2), st.Removed, "three loses 2 versions, gone loses its 2 values")
	require.Equal(t, one, gcStored(t, db, run, keyenc.TagKV, "one"))
	require.Equal(t, three[2:], gcStored(t, db, run, keyenc.TagKV, "three"))
	deleted := gcStored(t, db, run, keyenc.TagKV, "gone")
	require.Len(t, deleted, 1, "a deleted key keeps its tombstone")
	require.Greater(t, deleted[0], gone[1])
	require.Equal(t, deleted[0], st.Horizon)
	_, err = db.Get(ctx, run, []byte("gone"))
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, []string{fmt.Sprintf("-@%d", deleted[0])}, gcHistory(t, db, run, "gone"))
}

// State cells lose old versions, never their counter or current value.
func TestGCKeepLastStateCells(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	for i := range 5 {
		c, err := db.StateSet(ctx, run, "cell", value.Int(int64(i)))
		require.NoError(t, err)
		require.Equal(t, uint64(i+1), c)
	}
	// A deleted cell: its record keeps the counter.
	_, err := db.StateInit(ctx, run, "gone", value.Int(0))
	require.NoError(t, err)
	_, err = db.StateSet(ctx, run, "gone", value.Int(1))
	require.NoError(t, err)
	existed, err := db.StateDelete(ctx, run, "gone")
	require.NoError(t, err)
	require.True(t, existed)
	cellVersions := gcStored(t, db, run, keyenc.TagState, "cell")
	require.Len(t, cellVersions, 5)
	gcSetRetention(t, db, run, KeepLast(2))

	goneVersions := gcStored(t, db, run, keyenc.TagState, "gone")
	require.Len(t, goneVersions, 3)

	st := gcRun(t, db, run)
	require.Equal(t, GCStats{Keys: 2, Removed: 3 + 1, Horizon: goneVersions[1]}, st, "gone's versions are the newer ones")
	require.Equal(t, cellVersions[:2], gcStored(t, db, run, keyenc.TagState, "cell"))
	require.Equal(t, goneVersions[:2], gcStored(t, db, run, keyenc.TagState, "gone"))

	s, err := db.StateRead(ctx, run, "cell")
	require.NoError(t, err)
	require.True(t, value.Equal(value.Int(4), s.Value))
	require.Equal(t, uint64(5), s.Counter, "the counter survives GC")
	require.Equal(t, cellVersions[0], s.Version)
	c, err := db.StateSet(ctx, run, "cell", value.Int(5))
	require.NoError(t, err)
	require.Equal(t, uint64(6), c, "the counter continues after GC")

	gcSetRetention(t, db, run, KeepLast(1))
	gcRun(t, db, run)
	require.Len(t, gcStored(t, db, run, keyenc.TagState, "gone"), 1, "only the deletion is left")
	_, err = db.StateRead(ctx, run, "gone")
	require.ErrorIs(t, err, ErrNotFound)
	c, err = db.StateInit(ctx, run, "gone", value.Int(9))
	require.NoError(t, err)
	require.Equal(t, uint64(3), c, "a deleted cell's counter survives GC: no ABA")
}

// Event keys and the log head are never removed; a transaction older than
// the horizon still reads the log.
func TestGCNeverRemovesEvents(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	appendN := func(from, n int) {
		for i := from; i < from+n; i++ {
			e, err := db.AppendEvent(ctx, run, "tick", value.Object(map[string]Value{"i": value.Int(int64(i))}))
			require.NoError(t, err)
			require.Equal(t, uint64(i), e.Sequence)
		}
	}
	appendN(0, 50)
	gcWrite(t, db, run, "k", 3)
	old, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer old.End()
	appendN(50, 50)
	gcWrite(t, db, run, "k", 1)
	anchor, err := db.EventAnchor(ctx, run)
	require.NoError(t, err)
	gcSetRetention(t, db, run, KeepLast(1))

	// The open transaction holds back what its snapshot reads: of the KV
	// key's 4 versions and the log head's 100, the newest at its snapshot
	// and those above it stay.
	st := gcRun(t, db, run)
	require.Equal(t, int64(1), st.Keys, "only the KV key is counted")
	require.Equal(t, int64(2+49), st.Removed, "2 versions of the KV key and 49 of the log head")
	require.LessOrEqual(t, st.Horizon, old.Snapshot())
	n, err := old.EventLen()
	require.NoError(t, err)
	require.Equal(t, uint64(50), n)
	got, err := old.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "k#2", gcShow(got.Value, false))
	snap := old.Snapshot()
	old.End()

	// Once it ended, the next pass removes them.
	st = gcRun(t, db, run)
	require.Equal(t, int64(1+50), st.Removed, "the rest: 1 version of the KV key and 50 of the log head")
	require.Greater(t, st.Horizon, snap)

	n, err = db.EventLen(ctx, run)
	require.NoError(t, err)
	require.Equal(t, uint64(100), n)
	evs, err := db.EventRange(ctx, run, 0, 100)
	require.NoError(t, err)
	require.Len(t, evs, 100)
	for i, e := range evs {
		require.Equal(t, uint64(i), e.Sequence)
		require.True(t, value.Equal(value.Object(map[string]Value{"i": value.Int(int64(i))}), e.Payload))
	}
	ver, err := db.VerifyEvents(ctx, run, &anchor)
	require.NoError(t, err)
	require.True(t, ver.Valid, "%+v", ver)
	require.Equal(t, uint64(100), ver.Length)
	require.Len(t, gcStored(t, db, run, keyenc.TagRunMeta, string(eventHeadKey)), 1, "the log head's old versions follow the policy")
	for seq := range uint64(100) {
		require.NotEmpty(t, gcStored(t, db, run, keyenc.TagEvent, string(binary.BigEndian.AppendUint64(nil, seq))), "event %d stays", seq)
	}

	// Appending goes on from the kept head.
	appendN(100, 5)
	ver, err = db.VerifyEvents(ctx, run, &anchor)
	require.NoError(t, err)
	require.True(t, ver.Valid, "%+v", ver)
	require.Equal(t, uint64(105), ver.Length)
}

// KeepFor keeps the versions younger than d and each key's newest version
// older than d.
func TestGCKeepFor(t *testing.T) {
	const d = 250 * time.Millisecond
	db, run := gcOpen(t)
	old := gcWrite(t, db, run, "old", 3)
	mixedOld := gcWrite(t, db, run, "mixed", 2)
	time.Sleep(d + 50*time.Millisecond)
	mixedYoung := gcWrite(t, db, run, "mixed", 1)
	young := gcWrite(t, db, run, "young", 2)
	gcSetRetention(t, db, run, KeepFor(d))

	st := gcRun(t, db, run)
	require.Equal(t, GCStats{Keys: 3, Removed: 2 + 1, Horizon: max(old[2], mixedOld[1])}, st)
	require.Equal(t, old[2:], gcStored(t, db, run, keyenc.TagKV, "old"), "only the value at the cutoff")
	require.Equal(t, []uint64{mixedYoung[0], mixedOld[1]}, gcStored(t, db, run, keyenc.TagKV, "mixed"), "the young version and the value at the cutoff")
	require.Equal(t, []uint64{young[1], young[0]}, gcStored(t, db, run, keyenc.TagKV, "young"), "nothing younger than d is removed")
	require.Equal(t, []string{fmt.Sprintf("mixed#2@%d", mixedYoung[0]), fmt.Sprintf("mixed#1@%d", mixedOld[1])}, gcHistory(t, db, run, "mixed"))
}

// ---- The horizon ----

// GC keeps every version an open transaction's snapshot reads, whatever
// the policy: its KV, state and list reads see what they saw, and as a
// read-only transaction it commits without a conflict. Once it ended, the
// next pass removes those versions.
func TestGCKeepsWhatOpenTransactionsRead(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	k := gcWrite(t, db, run, "k", 3)
	gcWrite(t, db, run, "other", 1)
	_, err := db.StateSet(ctx, run, "cell", value.Int(1))
	require.NoError(t, err)
	old, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer old.End()

	vs := gcWrite(t, db, run, "k", 2)
	_, err = db.StateSet(ctx, run, "cell", value.Int(2))
	require.NoError(t, err)
	gcSetRetention(t, db, run, KeepLast(1))
	st := gcRun(t, db, run)
	require.LessOrEqual(t, st.Horizon, old.Snapshot())
	require.Equal(t, []uint64{vs[1], vs[0], k[2]}, gcStored(t, db, run, keyenc.TagKV, "k"), "the version at the open snapshot stays")

	got, err := old.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "k#2", gcShow(got.Value, false))
	ok, err := old.Exists([]byte("other"))
	require.NoError(t, err)
	require.True(t, ok)
	keys, err := old.List(nil)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("k"), []byte("other")}, keys)
	cell, err := old.StateRead("cell")
	require.NoError(t, err)
	require.True(t, value.Equal(value.Int(1), cell.Value))
	names, err := old.StateList("")
	require.NoError(t, err)
	require.Equal(t, []string{"cell"}, names)
	ver, err := old.Commit()
	require.NoError(t, err, "a read-only transaction never conflicts")
	require.Zero(t, ver)

	st = gcRun(t, db, run)
	require.Equal(t, vs[1]+1, st.Horizon, "the cell's newest version, committed right after k's")
	require.Equal(t, []uint64{vs[1]}, gcStored(t, db, run, keyenc.TagKV, "k"))

	// A transaction begun after the GC reads the newest value, and so do
	// direct reads.
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	got, err = tx.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "k#4", gcShow(got.Value, false))
	got, err = db.Get(ctx, run, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, "k#4", gcShow(got.Value, false))
	s, err := db.StateRead(ctx, run, "cell")
	require.NoError(t, err)
	require.True(t, value.Equal(value.Int(2), s.Value))
}

// A transaction at or above the horizon keeps reading after GC, even if it
// began before the pass.
func TestGCTransactionAtHorizonReads(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	vs := gcWrite(t, db, run, "k", 3)
	gcSetRetention(t, db, run, KeepLast(1))
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	st := gcRun(t, db, run)
	require.Equal(t, vs[2], st.Horizon)
	require.GreaterOrEqual(t, tx.Snapshot(), st.Horizon)
	got, err := tx.Get([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "k#2", gcShow(got.Value, false))
	require.NoError(t, tx.Put([]byte("k"), value.String("k#3")))
	_, err = tx.Commit()
	require.NoError(t, err)
}

// A GC pass that runs while a transaction is open neither disturbs its
// reads nor makes it retry: its read-modify-write commits on the first
// attempt, with the value of its snapshot.
func TestGCDuringTransactionNeedsNoRetry(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	gcWrite(t, db, run, "k", 3)
	gcSetRetention(t, db, run, KeepLast(1))
	var snaps []uint64
	var seen string
	err := db.Transaction(ctx, run, func(tx *Txn) error {
		snaps = append(snaps, tx.Snapshot())
		// After this attempt began: more writes of another key and a GC
		// pass.
		gcWrite(t, db, run, "other", 2)
		require.LessOrEqual(t, gcRun(t, db, run).Horizon, tx.Snapshot())
		v, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		seen = gcShow(v.Value, false)
		return tx.Put([]byte("copy"), v.Value)
	}, WithRetry(RetryConfig{BaseDelay: time.Microsecond}))
	require.NoError(t, err)
	require.Len(t, snaps, 1, "no retry")
	require.Equal(t, "k#2", seen)
	got, err := db.Get(ctx, run, []byte("copy"))
	require.NoError(t, err)
	require.Equal(t, "k#2", gcShow(got.Value, false))
}

// Reads at an explicit version below the horizon fail with
// ErrHistoryTrimmed (the contract of Database.GC); at or above it they see
// what they saw before.
func TestGCReadsBelowHorizonAreTrimmed(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	vs := gcWrite(t, db, run, "k", 4)
	gcSetRetention(t, db, run, KeepLast(2))
	st := gcRun(t, db, run)
	require.Equal(t, vs[2], st.Horizon)

	for v := st.Horizon; v <= db.CurrentVersion(); v++ {
		got, err := db.GetAt(ctx, run, []byte("k"), v)
		require.NoError(t, err, "version %d", v)
		want := "k#2"
		if v >= vs[3] {
			want = "k#3"
		}
		require.Equal(t, want, gcShow(got.Value, false), "version %d", v)
	}
	h, err := db.History(ctx, run, []byte("k"), HistoryOptions{Before: st.Horizon + 1})
	require.NoError(t, err)
	require.Len(t, h, 1)

	for v := uint64(1); v < st.Horizon; v++ {
		_, err := db.GetAt(ctx, run, []byte("k"), v)
		require.ErrorIs(t, err, ErrHistoryTrimmed, "GetAt at version %d below the horizon %d", v, st.Horizon)
	}
	h, err = db.History(ctx, run, []byte("k"), HistoryOptions{Before: st.Horizon})
	require.NoError(t, err, "History pages below the horizon (it lists what is stored)")
	require.Empty(t, h, "the versions below the horizon were removed")
}

// Paging through History with Before reaches every version that History
// without Before lists, also below the run's GC horizon (which another
// key's writes may have raised far above this key's versions), and ends
// with an empty page.
func TestHistoryPagesBelowTheHorizon(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	as := gcWrite(t, db, run, "a", 6)
	gcWrite(t, db, run, "c", 6)
	gcSetRetention(t, db, run, KeepLast(3))
	st := gcRun(t, db, run)
	require.Greater(t, st.Horizon, as[5], "the horizon is above all of a's versions")

	all, err := db.History(ctx, run, []byte("a"), HistoryOptions{})
	require.NoError(t, err)
	var want []uint64
	for _, e := range all {
		want = append(want, e.Version)
	}
	require.Equal(t, []uint64{as[5], as[4], as[3]}, want, "the three newest stay")
	for _, limit := range []int{1, 2} {
		var got []uint64
		before := uint64(0)
		for {
			page, err := db.History(ctx, run, []byte("a"), HistoryOptions{Limit: limit, Before: before})
			require.NoError(t, err, "limit %d, before %d", limit, before)
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				got = append(got, e.Version)
			}
			before = page[len(page)-1].Version
		}
		require.Equal(t, want, got, "limit %d: every stored version once", limit)
	}
	_, err = db.GetAt(ctx, run, []byte("a"), as[5])
	require.ErrorIs(t, err, ErrHistoryTrimmed, "a point read below the horizon is still refused")
}

// The policy and the horizon are stored with the run.
func TestGCRetentionSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	opts := Options{Path: "db", FS: fs, Durability: DurabilityBatched}
	db, err := OpenWith(opts)
	require.NoError(t, err)
	last, hour, none := NewRunID(), NewRunID(), NewRunID()
	vs := gcWrite(t, db, last, "k", 4)
	gcWrite(t, db, hour, "k", 4)
	gcSetRetention(t, db, last, KeepLast(2))
	gcSetRetention(t, db, hour, KeepFor(time.Hour))
	st := gcRun(t, db, last)
	require.Equal(t, GCStats{Keys: 1, Removed: 2, Horizon: vs[2]}, st)
	require.Equal(t, GCStats{Keys: 1}, gcRun(t, db, hour))
	require.NoError(t, db.Close())

	db, err = OpenWith(opts)
	require.NoError(t, err)
	defer db.Close()
	for _, tc := range []struct {
		run  RunID
		want Retention
	}{{last, KeepLast(2)}, {hour, KeepFor(time.Hour)}, {none, KeepAll()}} {
		got, err := db.Retention(ctx, tc.run)
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
	require.Equal(t, GCStats{Keys: 1, Removed: 0, Horizon: vs[2]}, gcRun(t, db, last), "the horizon is reloaded")
	require.Equal(t, []uint64{vs[3], vs[2]}, gcStored(t, db, last, keyenc.TagKV, "k"), "removals survive the restart")
	require.Len(t, gcStored(t, db, hour, keyenc.TagKV, "k"), 4)

	// The reloaded horizon still guards explicit reads, and a pass after
	// the restart raises it.
	_, err = db.GetAt(ctx, last, []byte("k"), vs[1])
	require.ErrorIs(t, err, ErrHistoryTrimmed)
	more := gcWrite(t, db, last, "k", 2)
	require.Equal(t, more[0], gcRun(t, db, last).Horizon)
}

// GC with a cancelled context stores no horizon and removes nothing.
func TestGCCancelled(t *testing.T) {
	db, run := gcOpen(t)
	vs := gcWrite(t, db, run, "k", 3)
	gcSetRetention(t, db, run, KeepLast(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := db.GC(ctx, run)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, gcStored(t, db, run, keyenc.TagKV, "k"), len(vs))
	h, err := db.gcHorizon(run)
	require.NoError(t, err)
	require.Zero(t, h)
}

// ---- Concurrency ----

// Writers update pairs of KV keys and pairs of state cells, each pair in one
// transaction (retried on conflicts); readers check, in transactions that
// are not retried, that both halves are equal; a GC loop prunes everything
// to one version meanwhile. No reader may see a torn pair or fail: GC keeps
// what open snapshots read, so a read-only transaction never conflicts.
func TestGCConcurrentWithTransactions(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	const pairs, writers, readers, perWriter = 8, 4, 4, 150
	a := func(i int) []byte { return fmt.Appendf(nil, "a/%d", i) }
	b := func(i int) []byte { return fmt.Appendf(nil, "b/%d", i) }
	sa := func(i int) string { return fmt.Sprintf("sa/%d", i) }
	sb := func(i int) string { return fmt.Sprintf("sb/%d", i) }
	require.NoError(t, db.Transaction(ctx, run, func(tx *Txn) error {
		for i := range pairs {
			for _, k := range [][]byte{a(i), b(i)} {
				if err := tx.Put(k, value.Int(0)); err != nil {
					return err
				}
			}
			for _, n := range []string{sa(i), sb(i)} {
				if _, err := tx.StateSet(n, value.Int(0)); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	gcSetRetention(t, db, run, KeepLast(1))
	retry := WithRetry(RetryConfig{MaxRetries: 10000, BaseDelay: time.Microsecond, MaxDelay: 200 * time.Microsecond})

	var (
		wg, wwg sync.WaitGroup
		done    atomic.Bool
		reads   atomic.Int64
		removed atomic.Int64
		commits atomic.Int64
		errs    = make(chan error, writers+readers+1)
	)
	// Writers go on past perWriter commits until GC has removed versions
	// under the readers' feet (or 10s have passed, which then fails).
	start := time.Now()
	more := func(n int) bool {
		return n < perWriter || (removed.Load() == 0 || reads.Load() == 0) && time.Since(start) < 10*time.Second
	}
	intOf := func(v Versioned) int64 { n, _ := v.Value.AsInt(); return n }
	for w := range writers {
		wwg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for n := 0; more(n); n++ {
				i := rng.IntN(pairs)
				err := db.Transaction(ctx, run, func(tx *Txn) error {
					cur, err := tx.Get(a(i))
					if err != nil {
						return err
					}
					next := value.Int(intOf(cur) + 1)
					if err := tx.Put(a(i), next); err != nil {
						return err
					}
					if err := tx.Put(b(i), next); err != nil {
						return err
					}
					s, err := tx.StateRead(sa(i))
					if err != nil {
						return err
					}
					n, _ := s.Value.AsInt()
					if _, err := tx.StateSet(sa(i), value.Int(n+1)); err != nil {
						return err
					}
					_, err = tx.StateSet(sb(i), value.Int(n+1))
					return err
				}, retry)
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				commits.Add(1)
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for !done.Load() {
				i := rng.IntN(pairs)
				// No retry: a read-only transaction never fails, GC or not.
				err := db.Transaction(ctx, run, func(tx *Txn) error {
					return gcReadPair(tx, a(i), b(i), sa(i), sb(i))
				})
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	passes := goGCLoop(&wg, db, run, done.Load, errs, &removed)
	stopGCRace(t, &wwg, &wg, &done, errs)
	t.Logf("%d commits; %d GC passes removed %d versions; %d pair reads",
		commits.Load(), passes.Load(), removed.Load(), reads.Load())
	require.Positive(t, passes.Load())
	require.Positive(t, removed.Load())
	require.Positive(t, reads.Load())

	// Every committed increment is there, and a last pass leaves one
	// version per key.
	gcRun(t, db, run)
	var total int64
	require.NoError(t, db.Transaction(ctx, run, func(tx *Txn) error {
		for i := range pairs {
			if err := gcReadPair(tx, a(i), b(i), sa(i), sb(i)); err != nil {
				return err
			}
			v, err := tx.Get(a(i))
			if err != nil {
				return err
			}
			total += intOf(v)
		}
		return nil
	}))
	require.Equal(t, commits.Load(), total)
	for i := range pairs {
		require.Len(t, gcStored(t, db, run, keyenc.TagKV, string(a(i))), 1)
		require.Len(t, gcStored(t, db, run, keyenc.TagState, sb(i)), 1)
	}
}

// gcReadPair reads two KV keys and two state cells written together and
// fails unless each pair is equal.
func gcReadPair(tx *Txn, ka, kb []byte, sa, sb string) error {
	va, err := tx.Get(ka)
	if err != nil {
		return err
	}
	vb, err := tx.Get(kb)
	if err != nil {
		return err
	}
	if !value.Equal(va.Value, vb.Value) || va.Version != vb.Version {
		return fmt.Errorf("torn KV pair at snapshot %d: %s@%d, %s@%d", tx.Snapshot(), va.Value, va.Version, vb.Value, vb.Version)
	}
	s1, err := tx.StateRead(sa)
	if err != nil {
		return err
	}
	s2, err := tx.StateRead(sb)
	if err != nil {
		return err
	}
	if !value.Equal(s1.Value, s2.Value) || s1.Counter != s2.Counter || s1.Version != s2.Version {
		return fmt.Errorf("torn state pair at snapshot %d: %+v, %+v", tx.Snapshot(), s1, s2)
	}
	return nil
}

// ---- Crash ----

// GC, then a crash that keeps some of what was not synced: the removals
// and later writes may be lost, the horizon (synced before any removal)
// never is, and every read at or above it sees what it saw before the GC.
func TestGCCrash(t *testing.T) {
	for _, pct := range []int{0, 50, 100} {
		t.Run(fmt.Sprint("unsynced=", pct), func(t *testing.T) {
			gcCrashOnce(t, pct)
		})
	}
}

func gcCrashOnce(t *testing.T, unsyncedPct int) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	// Batched with no background sync: until GC stores its horizon, nothing
	// is synced.
	opts := Options{Path: "db", FS: fs, Durability: DurabilityBatched, SyncInterval: time.Hour, MaxPendingCommits: 1 << 30}
	db, err := OpenWith(opts)
	require.NoError(t, err)
	run := NewRunID()
	rng := rand.New(rand.NewPCG(11, uint64(unsyncedPct)))
	const keys = 12
	key := func(i int) []byte { return fmt.Appendf(nil, "k%02d", i) }
	for round := range 8 {
		require.NoError(t, db.Transaction(ctx, run, func(tx *Txn) error {
			for i := range keys {
				switch rng.IntN(4) {
				case 0: // untouched this round
				case 1:
					if _, err := tx.Delete(key(i)); err != nil {
						return err
					}
				default:
					if err := tx.Put(key(i), value.String(fmt.Sprintf("k%02d@%d", i, round))); err != nil {
						return err
					}
				}
			}
			return nil
		}))
	}
	gcSetRetention(t, db, run, KeepLast(2))
	pre := db.CurrentVersion()
	readAll := func(v uint64) []string {
		out := make([]string, keys)
		for i := range keys {
			got, err := db.GetAt(ctx, run, key(i), v)
			switch {
			case errors.Is(err, ErrNotFound):
				out[i] = "-"
			default:
				require.NoError(t, err, "key %d at %d", i, v)
				out[i] = gcShow(got.Value, false)
			}
		}
		return out
	}
	before := map[uint64][]string{}
	for v := uint64(1); v <= pre; v++ {
		before[v] = readAll(v)
	}

	st := gcRun(t, db, run)
	require.Positive(t, st.Removed)
	require.Positive(t, st.Horizon)
	require.LessOrEqual(t, st.Horizon, pre)
	// Unsynced writes after the GC.
	const late = 10
	for j := range late {
		_, err := db.Put(ctx, run, fmt.Appendf(nil, "late%02d", j), value.Int(int64(j)))
		require.NoError(t, err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPct, RNG: rng})
	require.NoError(t, db.Close())

	opts.FS = crashed
	db, err = OpenWith(opts)
	require.NoError(t, err, "a crashed database always reopens")
	defer db.Close()
	h, err := db.gcHorizon(run)
	require.NoError(t, err)
	require.Equal(t, st.Horizon, h, "the horizon was synced before any removal")
	r, err := db.Retention(ctx, run)
	require.NoError(t, err)
	require.Equal(t, KeepLast(2), r)
	require.Greater(t, db.CurrentVersion(), pre, "everything up to the horizon's commit is durable")

	check := func(when string) {
		for v := h; v <= pre; v++ {
			require.Equal(t, before[v], readAll(v), "%s: reads at version %d (horizon %d)", when, v, h)
		}
		for i := range keys {
			got, err := db.Get(ctx, run, key(i))
			want := before[pre][i]
			if want == "-" {
				require.ErrorIs(t, err, ErrNotFound)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, want, gcShow(got.Value, false), "%s: newest value of key %d", when, i)
		}
	}
	check("after the crash")
	// The late writes come back as a prefix, with their values.
	lost := false
	for j := range late {
		got, err := db.Get(ctx, run, fmt.Appendf(nil, "late%02d", j))
		if errors.Is(err, ErrNotFound) {
			lost = true
			continue
		}
		require.NoError(t, err)
		require.False(t, lost, "late write %d recovered after a lost one", j)
		n, _ := got.Value.AsInt()
		require.Equal(t, int64(j), n)
	}

	// GC again: whatever removals the crash undid are done again, and the
	// horizon does not move.
	st2 := gcRun(t, db, run)
	require.Equal(t, h, st2.Horizon)
	check("after GC again")
	for i := range keys {
		require.LessOrEqual(t, len(gcStored(t, db, run, keyenc.TagKV, string(key(i)))), 2)
	}
}

// Direct KV reads at the current version (Get, GetMany, Exists, List)
// never fail or miss a key because of a concurrent GC: they read again at a
// newer version by themselves.
func TestGCConcurrentDirectKVReads(t *testing.T) {
	ctx := context.Background()
	gcDirectReadsUnderGC(t, func(db *Database, run RunID, i int) error {
		if _, err := db.Get(ctx, run, gcPairKey("a", i)); err != nil {
			return fmt.Errorf("Get: %w", err)
		}
		vs, err := db.GetMany(ctx, run, [][]byte{gcPairKey("a", i), gcPairKey("b", i)})
		if err != nil {
			return fmt.Errorf("GetMany: %w", err)
		}
		if vs[0].Version == 0 || vs[0].Version != vs[1].Version || !value.Equal(vs[0].Value, vs[1].Value) {
			return fmt.Errorf("GetMany: torn or missing pair %+v", vs)
		}
		if ok, err := db.Exists(ctx, run, gcPairKey("b", i)); err != nil || !ok {
			return fmt.Errorf("Exists: %v, %w", ok, err)
		}
		page, err := db.List(ctx, run, []byte("a/"), ListOptions{})
		if err != nil || len(page.Keys) != gcPairs {
			return fmt.Errorf("List: %d keys, %w", len(page.Keys), err)
		}
		// History from the current version starts again when GC passes it.
		h, err := db.History(ctx, run, gcPairKey("a", i), HistoryOptions{Limit: 1})
		if err != nil || len(h) != 1 || h[0].Deleted {
			return fmt.Errorf("History: %+v, %w", h, err)
		}
		return nil
	})
}

// The direct state reads are reads at the current version too, and the
// contract of Database.GC says such reads retry by themselves.
func TestGCConcurrentDirectStateReads(t *testing.T) {
	ctx := context.Background()
	gcDirectReadsUnderGC(t, func(db *Database, run RunID, i int) error {
		if _, err := db.StateRead(ctx, run, gcCell(i)); err != nil {
			return fmt.Errorf("StateRead: %w", err)
		}
		names, err := db.StateList(ctx, run, "cell/")
		if err != nil || len(names) != gcPairs {
			return fmt.Errorf("StateList: %d names, %w", len(names), err)
		}
		return nil
	})
}

const gcPairs = 8

func gcPairKey(half string, i int) []byte { return fmt.Appendf(nil, "%s/%d", half, i) }

func gcCell(i int) string { return fmt.Sprintf("cell/%d", i) }

// gcDirectReadsUnderGC runs writers that rewrite KV pairs a/i, b/i and state
// cells cell/i together, a GC loop with KeepLast(1), and readers calling
// check (with a pair index) until the writers are done; check must never
// fail.
func gcDirectReadsUnderGC(t *testing.T, check func(db *Database, run RunID, i int) error) {
	ctx := context.Background()
	db, run := gcOpen(t)
	const writers, readers, perWriter = 2, 4, 200
	write := func(tx *Txn, i int, n int64) error {
		if err := tx.Put(gcPairKey("a", i), value.Int(n)); err != nil {
			return err
		}
		if err := tx.Put(gcPairKey("b", i), value.Int(n)); err != nil {
			return err
		}
		_, err := tx.StateSet(gcCell(i), value.Int(n))
		return err
	}
	require.NoError(t, db.Transaction(ctx, run, func(tx *Txn) error {
		for i := range gcPairs {
			if err := write(tx, i, 0); err != nil {
				return err
			}
		}
		return nil
	}))
	gcSetRetention(t, db, run, KeepLast(1))
	retry := WithRetry(RetryConfig{MaxRetries: 10000, BaseDelay: time.Microsecond, MaxDelay: 200 * time.Microsecond})

	var (
		wg, wwg        sync.WaitGroup
		done           atomic.Bool
		reads, removed atomic.Int64
		errs           = make(chan error, writers+readers+1)
	)
	// Writers go on past perWriter commits until GC has removed versions
	// under the readers' feet (or 10s have passed, which then fails).
	start := time.Now()
	more := func(n int) bool {
		return n < perWriter || (removed.Load() == 0 || reads.Load() == 0) && time.Since(start) < 10*time.Second
	}
	for w := range writers {
		wwg.Go(func() {
			for n := 0; more(n); n++ {
				err := db.Transaction(ctx, run, func(tx *Txn) error { return write(tx, (w+n)%gcPairs, int64(n)) }, retry)
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			for n := 0; !done.Load(); n++ {
				if err := check(db, run, n%gcPairs); err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	passes := goGCLoop(&wg, db, run, done.Load, errs, &removed)
	stopGCRace(t, &wwg, &wg, &done, errs)
	require.Positive(t, passes.Load())
	require.Positive(t, removed.Load())
	require.Positive(t, reads.Load())
}

// Appends, direct event reads and verification go on while GC prunes the
// log head's old versions in a loop: no read fails, and the chain stays
// whole.
func TestGCConcurrentWithEventAppends(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	gcSetRetention(t, db, run, KeepLast(1))
	var (
		wg, wwg sync.WaitGroup
		done    atomic.Bool
		removed atomic.Int64
		errs    = make(chan error, 3)
	)
	wwg.Go(func() {
		for i := range 2000 {
			if _, err := db.AppendEvent(ctx, run, "tick", value.Object(map[string]Value{"i": value.Int(int64(i))})); err != nil {
				errs <- fmt.Errorf("AppendEvent: %w", err)
				return
			}
		}
	})
	goGCLoop(&wg, db, run, done.Load, errs, &removed)
	wg.Go(func() {
		for !done.Load() {
			if _, err := db.EventLen(ctx, run); err != nil {
				errs <- fmt.Errorf("EventLen: %w", err)
				return
			}
			if v, err := db.VerifyEvents(ctx, run, nil); err != nil || !v.Valid {
				errs <- fmt.Errorf("VerifyEvents: %+v, %v", v, err)
				return
			}
		}
	})
	stopGCRace(t, &wwg, &wg, &done, errs)
	n, err := db.EventLen(ctx, run)
	require.NoError(t, err)
	require.Equal(t, uint64(2000), n)
	v, err := db.VerifyEvents(ctx, run, nil)
	require.NoError(t, err)
	require.True(t, v.Valid, "%+v", v)
}

// stopGCRace waits for the writers, then stops the readers and the GC loop
// and fails on any error they sent.
func stopGCRace(t *testing.T, writers, others *sync.WaitGroup, done *atomic.Bool, errs chan error) {
	t.Helper()
	writers.Wait()
	done.Store(true)
	others.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// goGCLoop runs GC passes on run in a goroutine of wg until stop reports
// true, adding the versions removed to removed and sending a failure to
// errs; the returned counter counts the passes.
func goGCLoop(wg *sync.WaitGroup, db *Database, run RunID, stop func() bool, errs chan<- error, removed *atomic.Int64) *atomic.Int64 {
	passes := new(atomic.Int64)
	wg.Go(func() {
		for !stop() {
			st, err := db.GC(context.Background(), run)
			if err != nil {
				errs <- fmt.Errorf("GC: %w", err)
				return
			}
			passes.Add(1)
			removed.Add(st.Removed)
		}
	})
	return passes
}

// GC passes of one run take turns, so each removed version is counted once
// however many passes run at the same time.
func TestConcurrentGCPassesCountEachRemovalOnce(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	const keys, versions = 100, 5
	for k := range keys {
		gcWrite(t, db, run, fmt.Sprintf("k%03d", k), versions)
	}
	gcSetRetention(t, db, run, KeepLast(1))
	var removed atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			st, err := db.GC(ctx, run)
			assert.NoError(t, err)
			removed.Add(st.Removed)
		})
	}
	wg.Wait()
	require.Equal(t, int64(keys*(versions-1)), removed.Load())

	// A pass waiting for its turn gives up when its context ends.
	rs := db.runs.acquire(run)
	defer rs.release()
	gc := rs.gc
	gc <- struct{}{}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err := db.GC(short, run)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	<-gc
}

// A KeepLast count near the largest int keeps everything, also versions
// above an open snapshot (the count of those is added to it).
func TestGCHugeKeepLastKeepsEverything(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	gcWrite(t, db, run, "k", 5)
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	gcWrite(t, db, run, "k", 1)
	for _, n := range []int{math.MaxInt, math.MaxInt - 1} {
		gcSetRetention(t, db, run, KeepLast(n))
		st := gcRun(t, db, run)
		require.Zero(t, st.Removed, "KeepLast(%d)", n)
		require.LessOrEqual(t, st.Horizon, tx.Snapshot(), "the horizon never passes an open snapshot")
	}
	require.Len(t, gcStored(t, db, run, keyenc.TagKV, "k"), 6)
}

// Before is exclusive however the visible version moves while History
// runs: a commit that becomes visible meanwhile is never listed.
func TestHistoryBeforeIsExclusiveUnderWrites(t *testing.T) {
	ctx := context.Background()
	db, run := gcOpen(t)
	gcWrite(t, db, run, "k", 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := db.Put(ctx, run, []byte("k"), value.Int(1))
			assert.NoError(t, err)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for range 20000 {
		before := db.CurrentVersion() + 1
		h, err := db.History(ctx, run, []byte("k"), HistoryOptions{Before: before, Limit: 1})
		require.NoError(t, err)
		require.NotEmpty(t, h)
		require.Less(t, h[0].Version, before)
	}
}

// A pass cut short by its deadline after it removed versions reports the
// horizon those removals raised, as a whole pass does.
func TestGCCutShortReportsItsHorizon(t *testing.T) {
	db, run := gcOpen(t)
	for k := range 3 {
		gcWrite(t, db, run, fmt.Sprintf("k%d", k), 1200) // more than a chunk of removals
	}
	gcSetRetention(t, db, run, KeepLast(1))
	for n := int64(1); ; n++ {
		ctx := &expiringCtx{Context: context.Background()}
		ctx.expireAfter(n)
		st, err := db.GC(ctx, run)
		require.ErrorIs(t, err, context.DeadlineExceeded, "no pass was cut short after a removal (deadline after %d looks)", n)
		if st.Removed == 0 {
			continue
		}
		h, err := db.gcHorizon(run)
		require.NoError(t, err)
		require.NotZero(t, h)
		require.Equal(t, h, st.Horizon)
		return
	}
}
