package strata_test

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

func kvOpen(t *testing.T) (*strata.Database, strata.RunID) {
	t.Helper()
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db, strata.NewRunID()
}

// kvPutKeys writes keys (value: the key's bytes) in transactions of up to 500.
func kvPutKeys(t *testing.T, db *strata.Database, run strata.RunID, keys []string) {
	t.Helper()
	for chunk := range slices.Chunk(keys, 500) {
		require.NoError(t, db.Transaction(ctx, run, func(tx *strata.Txn) error {
			for _, k := range chunk {
				if err := tx.Put([]byte(k), value.Bytes([]byte(k))); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// kvListAll pages through prefix with limit and returns every page.
func kvListAll(t *testing.T, db *strata.Database, run strata.RunID, prefix string, limit int) []strata.ListPage {
	t.Helper()
	var pages []strata.ListPage
	var cursor []byte
	for {
		p, err := db.List(ctx, run, []byte(prefix), strata.ListOptions{Cursor: cursor, Limit: limit})
		require.NoError(t, err)
		pages = append(pages, p)
		if p.Next == nil {
			return pages
		}
		require.Len(t, p.Keys, limit, "only the last page may be short")
		require.Less(t, len(pages), 100000, "pagination does not end")
		cursor = p.Next
	}
}

func kvKeyStrings(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

func TestKVExists(t *testing.T) {
	db, run := kvOpen(t)
	_, err := db.Put(ctx, run, []byte("present"), value.Int(1))
	require.NoError(t, err)
	_, err = db.Put(ctx, run, []byte("deleted"), value.Int(1))
	require.NoError(t, err)
	_, err = db.Delete(ctx, run, []byte("deleted"))
	require.NoError(t, err)
	_, err = db.Put(ctx, run, []byte("null"), value.Null())
	require.NoError(t, err)

	for k, want := range map[string]bool{"present": true, "deleted": false, "absent": false, "null": true} {
		got, err := db.Exists(ctx, run, []byte(k))
		require.NoError(t, err)
		require.Equal(t, want, got, k)
	}
	got, err := db.Exists(ctx, strata.NewRunID(), []byte("present"))
	require.NoError(t, err)
	require.False(t, got, "another run's key does not exist in this run")

	_, err = db.Exists(ctx, strata.RunID{}, []byte("present"))
	require.ErrorIs(t, err, strata.ErrInvalidRunID)
	_, err = db.Exists(ctx, run, nil)
	require.ErrorIs(t, err, strata.ErrInvalidKey)
	_, err = db.Exists(ctx, run, make([]byte, strata.MaxKeySize+1))
	require.ErrorIs(t, err, strata.ErrInvalidKey)
}

func TestKVListPrefixOrderAndRuns(t *testing.T) {
	db, run := kvOpen(t)
	other := strata.NewRunID()
	kvPutKeys(t, db, run, []string{"user/b", "user/a", "user/c", "users", "user", "team/x", "user/\xff", "user/a\x00"})
	kvPutKeys(t, db, other, []string{"user/zz", "other"})
	_, err := db.Delete(ctx, run, []byte("user/c"))
	require.NoError(t, err)

	p, err := db.List(ctx, run, []byte("user/"), strata.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"user/a", "user/a\x00", "user/b", "user/\xff"}, kvKeyStrings(p.Keys),
		"byte order, prefix only, deleted key skipped, other run's key absent")
	require.Nil(t, p.Next)
	require.Equal(t, db.CurrentVersion(), p.Version)

	p, err = db.List(ctx, run, nil, strata.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"team/x", "user", "user/a", "user/a\x00", "user/b", "user/\xff", "users"}, kvKeyStrings(p.Keys),
		"an empty prefix lists the whole run and nothing of another run")

	p, err = db.List(ctx, run, []byte("nothing"), strata.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, p.Keys)
	require.Nil(t, p.Next)

	p, err = db.List(ctx, strata.NewRunID(), nil, strata.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, p.Keys, "a run with no keys lists nothing")
}

func TestKVListPagination(t *testing.T) {
	db, run := kvOpen(t)
	var want []string
	for i := range 2500 {
		want = append(want, fmt.Sprintf("item/%05d", i))
	}
	kvPutKeys(t, db, run, want)
	kvPutKeys(t, db, run, []string{"itel", "iten", "other/1"}) // around the prefix

	pages := kvListAll(t, db, run, "item/", 1000)
	require.Len(t, pages, 3)
	require.Equal(t, []int{1000, 1000, 500}, []int{len(pages[0].Keys), len(pages[1].Keys), len(pages[2].Keys)})
	require.NotNil(t, pages[0].Next)
	require.NotNil(t, pages[1].Next)
	require.Nil(t, pages[2].Next)
	var got []string
	for _, p := range pages {
		got = append(got, kvKeyStrings(p.Keys)...)
	}
	require.Equal(t, want, got, "every key exactly once, in order")

	// The default limit is DefaultListLimit.
	p, err := db.List(ctx, run, []byte("item/"), strata.ListOptions{})
	require.NoError(t, err)
	require.Len(t, p.Keys, strata.DefaultListLimit)

	// A page that exactly exhausts the keys has no Next.
	pages = kvListAll(t, db, run, "item/", 500)
	require.Len(t, pages, 5)
	require.Len(t, pages[4].Keys, 500)
	require.Nil(t, pages[4].Next)
}

// TestKVListCursorBoundaries checks that a page resumes strictly after its
// cursor, including keys that extend the cursor with 0x00 bytes.
func TestKVListCursorBoundaries(t *testing.T) {
	db, run := kvOpen(t)
	keys := []string{"a", "a\x00", "a\x00\x00", "a\x00\x01", "a\x01", "a\xff", "a\xff\xff"}
	kvPutKeys(t, db, run, keys)
	pages := kvListAll(t, db, run, "a", 1)
	var got []string
	for _, p := range pages {
		got = append(got, kvKeyStrings(p.Keys)...)
	}
	require.Equal(t, keys, got)
	require.Len(t, pages, len(keys))
}

func TestKVListBetweenPages(t *testing.T) {
	db, run := kvOpen(t)
	kvPutKeys(t, db, run, []string{"k1", "k2", "k3", "k4", "k5", "k6"})
	p1, err := db.List(ctx, run, []byte("k"), strata.ListOptions{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"k1", "k2"}, kvKeyStrings(p1.Keys))

	// Between pages: the cursor key itself is deleted, a key before the
	// cursor and one after it are created, a later key is deleted.
	_, err = db.Delete(ctx, run, []byte("k2"))
	require.NoError(t, err)
	_, err = db.Delete(ctx, run, []byte("k4"))
	require.NoError(t, err)
	kvPutKeys(t, db, run, []string{"k0", "k3a"})

	p2, err := db.List(ctx, run, []byte("k"), strata.ListOptions{Cursor: p1.Next, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"k3", "k3a"}, kvKeyStrings(p2.Keys),
		"resumes after the (now deleted) cursor; a later insertion shows, a later deletion does not")
	require.Greater(t, p2.Version, p1.Version, "each page is read at the version visible when it is requested")
	p3, err := db.List(ctx, run, []byte("k"), strata.ListOptions{Cursor: p2.Next, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"k5", "k6"}, kvKeyStrings(p3.Keys))
	require.Nil(t, p3.Next)
}

func TestKVListBadInputs(t *testing.T) {
	db, run := kvOpen(t)
	kvPutKeys(t, db, run, []string{"a/1", "b/1"})
	cases := []struct {
		name   string
		run    strata.RunID
		prefix string
		opts   strata.ListOptions
		want   error
	}{
		{"nil run", strata.RunID{}, "a/", strata.ListOptions{}, strata.ErrInvalidRunID},
		{"negative limit", run, "a/", strata.ListOptions{Limit: -1}, strata.ErrInvalidOptions},
		{"cursor outside prefix", run, "a/", strata.ListOptions{Cursor: []byte("b/1")}, strata.ErrInvalidKey},
		{"cursor shorter than prefix", run, "a/", strata.ListOptions{Cursor: []byte("a")}, strata.ErrInvalidKey},
		{"oversized cursor", run, "a/", strata.ListOptions{Cursor: append([]byte("a/"), make([]byte, strata.MaxKeySize)...)}, strata.ErrInvalidKey},
		{"oversized prefix", run, string(make([]byte, strata.MaxKeySize+1)), strata.ListOptions{}, strata.ErrInvalidKey},
	}
	for _, c := range cases {
		p, err := db.List(ctx, c.run, []byte(c.prefix), c.opts)
		require.ErrorIs(t, err, c.want, c.name)
		require.Empty(t, p.Keys, c.name)
	}

	require.NoError(t, db.Close())
	_, err := db.List(ctx, run, nil, strata.ListOptions{})
	require.ErrorIs(t, err, strata.ErrClosed)
}

func TestKVGetMany(t *testing.T) {
	db, run := kvOpen(t)
	v1, err := db.Put(ctx, run, []byte("a"), value.Int(1))
	require.NoError(t, err)
	v2, err := db.Put(ctx, run, []byte("b"), value.String("two"))
	require.NoError(t, err)
	_, err = db.Put(ctx, run, []byte("gone"), value.Int(3))
	require.NoError(t, err)
	_, err = db.Delete(ctx, run, []byte("gone"))
	require.NoError(t, err)

	got, err := db.GetMany(ctx, run, [][]byte{[]byte("b"), []byte("absent"), []byte("a"), []byte("gone"), []byte("b")})
	require.NoError(t, err)
	require.Len(t, got, 5)
	require.True(t, value.Equal(value.String("two"), got[0].Value))
	require.Equal(t, v2, got[0].Version)
	require.Equal(t, strata.Versioned{}, got[1], "an absent key gives the zero Versioned")
	require.True(t, value.Equal(value.Int(1), got[2].Value))
	require.Equal(t, v1, got[2].Version)
	require.Equal(t, strata.Versioned{}, got[3], "a deleted key gives the zero Versioned")
	require.Equal(t, got[0], got[4], "duplicates are read twice")

	got, err = db.GetMany(ctx, run, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = db.GetMany(ctx, run, [][]byte{[]byte("a"), nil})
	require.ErrorIs(t, err, strata.ErrInvalidKey, "one bad key fails the whole call")
	_, err = db.GetMany(ctx, strata.RunID{}, [][]byte{[]byte("a")})
	require.ErrorIs(t, err, strata.ErrInvalidRunID)
}

// TestKVGetManyReadsOneSnapshot reads two keys that a writer always changes
// together: every GetMany must see them equal.
func TestKVGetManyReadsOneSnapshot(t *testing.T) {
	db, run := kvOpen(t)
	x, y := []byte("x"), []byte("y")
	bump := func(i int64) error {
		return db.Transaction(ctx, run, func(tx *strata.Txn) error {
			if err := tx.Put(x, value.Int(i)); err != nil {
				return err
			}
			return tx.Put(y, value.Int(i))
		})
	}
	require.NoError(t, bump(0))

	var stop atomic.Bool
	var commits atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(1); !stop.Load(); i++ {
			if err := bump(i); err != nil {
				t.Error(err)
				return
			}
			commits.Add(1)
		}
	})
	defer func() { stop.Store(true); wg.Wait() }()
	// Read until the reads have overlapped many commits.
	seen := map[uint64]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for reads := 0; reads < 500 || len(seen) < 50; reads++ {
		require.False(t, t.Failed())
		require.True(t, time.Now().Before(deadline), "saw only %d versions in %d reads (%d commits)", len(seen), reads, commits.Load())
		got, err := db.GetMany(ctx, run, [][]byte{x, y})
		require.NoError(t, err)
		require.Equal(t, got[0].Version, got[1].Version, "both keys read at one snapshot")
		require.True(t, value.Equal(got[0].Value, got[1].Value), "both keys read at one snapshot")
		seen[got[0].Version] = true
	}
}

// kvTimeTravel writes a, with commits of other keys in between:
// a=1 at v1, a=2 at v2, deleted at vDel, a=3 at v3.
type kvTimeTravel struct{ v1, v2, vDel, v3 uint64 }

func kvWriteTimeTravel(t *testing.T, db *strata.Database, run strata.RunID) kvTimeTravel {
	t.Helper()
	var f kvTimeTravel
	put := func(k string, i int64) uint64 {
		v, err := db.Put(ctx, run, []byte(k), value.Int(i))
		require.NoError(t, err)
		return v
	}
	put("other", 0)
	f.v1 = put("a", 1)
	put("ab", 100)
	f.v2 = put("a", 2)
	put("a\x00", 200)
	existed, err := db.Delete(ctx, run, []byte("a"))
	require.NoError(t, err)
	require.True(t, existed)
	f.vDel = db.CurrentVersion()
	put("other", 1)
	f.v3 = put("a", 3)
	put("other", 2)
	return f
}

func kvCheckGetAt(t *testing.T, db *strata.Database, run strata.RunID, f kvTimeTravel) {
	t.Helper()
	cur := db.CurrentVersion()
	want := map[uint64]int64{ // version -> value of a; 0 = not found
		0: 0, f.v1 - 1: 0, f.v1: 1, f.v1 + 1: 1, f.v2: 2, f.v2 + 1: 2,
		f.vDel: 0, f.vDel + 1: 0, f.v3: 3, cur: 3,
	}
	for at, w := range want {
		got, err := db.GetAt(ctx, run, []byte("a"), at)
		if w == 0 {
			require.ErrorIs(t, err, strata.ErrNotFound, "at %d", at)
			continue
		}
		require.NoError(t, err, "at %d", at)
		i, _ := got.Value.AsInt()
		require.Equal(t, w, i, "at %d", at)
		require.LessOrEqual(t, got.Version, at)
		require.False(t, got.Timestamp.IsZero())
	}
	_, err := db.GetAt(ctx, run, []byte("a"), cur+1)
	require.ErrorIs(t, err, strata.ErrFutureVersion)
	// An old read does not disturb the newest one.
	got, err := db.Get(ctx, run, []byte("a"))
	require.NoError(t, err)
	require.Equal(t, f.v3, got.Version)
}

func TestKVGetAt(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs, strata.DurabilityBatched)
	run := strata.NewRunID()
	f := kvWriteTimeTravel(t, db, run)
	kvCheckGetAt(t, db, run, f)

	_, err := db.GetAt(ctx, run, nil, 1)
	require.ErrorIs(t, err, strata.ErrInvalidKey)
	_, err = db.GetAt(ctx, strata.RunID{}, []byte("a"), 1)
	require.ErrorIs(t, err, strata.ErrInvalidRunID)
	_, err = db.GetAt(ctx, strata.NewRunID(), []byte("a"), f.v3)
	require.ErrorIs(t, err, strata.ErrNotFound, "another run never had a")

	// After a restart, time travel still works, before and after new
	// commits.
	require.NoError(t, db.Close())
	db = openMem(t, fs, strata.DurabilityBatched)
	defer db.Close()
	kvCheckGetAt(t, db, run, f)
	_, err = db.Put(ctx, run, []byte("a"), value.Int(4))
	require.NoError(t, err)
	got, err := db.GetAt(ctx, run, []byte("a"), f.v3)
	require.NoError(t, err)
	i, _ := got.Value.AsInt()
	require.Equal(t, int64(3), i)
}

func kvHistoryOf(t *testing.T, db *strata.Database, run strata.RunID, key string, opts strata.HistoryOptions) []string {
	t.Helper()
	h, err := db.History(ctx, run, []byte(key), opts)
	require.NoError(t, err)
	var out []string
	for i, e := range h {
		if i > 0 {
			require.Less(t, e.Version, h[i-1].Version, "newest first")
			require.False(t, e.Timestamp.After(h[i-1].Timestamp), "timestamps follow versions")
		}
		if e.Deleted {
			require.True(t, e.Value.IsNull(), "a deletion has a null value")
			out = append(out, fmt.Sprintf("%d:deleted", e.Version))
			continue
		}
		n, _ := e.Value.AsInt()
		out = append(out, fmt.Sprintf("%d:%d", e.Version, n))
	}
	return out
}

func kvCheckHistory(t *testing.T, db *strata.Database, run strata.RunID, f kvTimeTravel) {
	t.Helper()
	all := []string{
		fmt.Sprintf("%d:3", f.v3), fmt.Sprintf("%d:deleted", f.vDel),
		fmt.Sprintf("%d:2", f.v2), fmt.Sprintf("%d:1", f.v1),
	}
	require.Equal(t, all, kvHistoryOf(t, db, run, "a", strata.HistoryOptions{}), "no other key leaks in")
	require.Equal(t, all[:2], kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Limit: 2}))
	require.Equal(t, all, kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Limit: 10}))
	require.Equal(t, all[1:], kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Before: f.v3}), "Before is exclusive")
	require.Equal(t, all[2:], kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Before: f.vDel}))
	require.Equal(t, all[2:3], kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Before: f.vDel, Limit: 1}))
	require.Equal(t, all[3:], kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Before: f.v1 + 1}))
	require.Empty(t, kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Before: f.v1}))
	require.Empty(t, kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Before: 1}))
	require.Equal(t, all, kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Before: db.CurrentVersion() + 100}),
		"a bound past the visible version only bounds")
	require.Empty(t, kvHistoryOf(t, db, run, "never", strata.HistoryOptions{}))
	require.Equal(t, []string{fmt.Sprintf("%d:100", f.v1+1)}, kvHistoryOf(t, db, run, "ab", strata.HistoryOptions{}))

	// Paging with Before walks the whole history once.
	var paged []string
	for before := uint64(0); ; {
		h, err := db.History(ctx, run, []byte("a"), strata.HistoryOptions{Limit: 1, Before: before})
		require.NoError(t, err)
		if len(h) == 0 {
			break
		}
		paged = append(paged, kvHistoryOf(t, db, run, "a", strata.HistoryOptions{Limit: 1, Before: before})...)
		before = h[0].Version
	}
	require.Equal(t, all, paged)
}

func TestKVHistory(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs, strata.DurabilityBatched)
	run := strata.NewRunID()
	f := kvWriteTimeTravel(t, db, run)
	kvCheckHistory(t, db, run, f)

	_, err := db.History(ctx, run, []byte("a"), strata.HistoryOptions{Limit: -1})
	require.ErrorIs(t, err, strata.ErrInvalidOptions)
	_, err = db.History(ctx, run, nil, strata.HistoryOptions{})
	require.ErrorIs(t, err, strata.ErrInvalidKey)
	_, err = db.History(ctx, strata.RunID{}, []byte("a"), strata.HistoryOptions{})
	require.ErrorIs(t, err, strata.ErrInvalidRunID)
	h, err := db.History(ctx, strata.NewRunID(), []byte("a"), strata.HistoryOptions{})
	require.NoError(t, err)
	require.Empty(t, h, "another run has no history of a")

	require.NoError(t, db.Close())
	db = openMem(t, fs, strata.DurabilityBatched)
	defer db.Close()
	kvCheckHistory(t, db, run, f)
}

// TestKVReadsCopyTheirResults checks that returned keys and values are the
// caller's: changing them changes nothing stored.
func TestKVReadsCopyTheirResults(t *testing.T) {
	db, run := kvOpen(t)
	_, err := db.Put(ctx, run, []byte("k1"), value.Bytes([]byte("v1")))
	require.NoError(t, err)
	kvPutKeys(t, db, run, []string{"k2"})
	p, err := db.List(ctx, run, nil, strata.ListOptions{Limit: 1})
	require.NoError(t, err)
	p.Keys[0][0] = 'X'
	p.Next[1] = 'Y'
	p, err = db.List(ctx, run, nil, strata.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"k1", "k2"}, kvKeyStrings(p.Keys))

	got, err := db.GetMany(ctx, run, [][]byte{[]byte("k1")})
	require.NoError(t, err)
	raw, _ := got[0].Value.AsBytes()
	raw[0] = 'Z'
	again, err := db.GetAt(ctx, run, []byte("k1"), db.CurrentVersion())
	require.NoError(t, err)
	raw, _ = again.Value.AsBytes()
	require.True(t, bytes.Equal([]byte("v1"), raw))
}

// allocated returns the fewest bytes allocated by one of several calls of
// f: Pebble allocates now and then (a new memtable, say), a copy of a value
// would show in every call.
//
// Under the race detector Pebble also runs its invariant checks, and one of
// them wraps about one iterator in ten in an iterator that copies every key
// and value it returns (internal/invalidating), so that a caller that keeps
// them past the next step sees trashed bytes. Such a call copies the values
// in Pebble, not in Strata; a scan has several wrap points, and in about a
// third of the calls below it is wrapped at one of them. Taking the fewest
// of twelve calls there keeps that out of the figure (all twelve wrapped:
// about one in a million), while a copy by Strata still shows in each.
func allocated(f func()) uint64 {
	calls := 3
	if raceEnabled {
		calls = 12
	}
	fewest := uint64(math.MaxUint64)
	for range calls {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		fewest = min(fewest, after.TotalAlloc-before.TotalAlloc)
	}
	return fewest
}

// Listing reads keys, not values: a page of keys with large values
// allocates about what the keys take, not the values (each list below
// would allocate 16 MiB or more if it copied them). So does a transaction's
// list, a state cell list and the commit's check of a listed prefix.
func TestListsDoNotCopyValues(t *testing.T) {
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	big := make([]byte, 1<<20)
	for i := range 16 {
		_, err := db.Put(ctx, run, fmt.Appendf(nil, "k%02d", i), value.Bytes(big))
		require.NoError(t, err)
		_, err = db.StateSet(ctx, run, fmt.Sprintf("s%02d", i), value.Bytes(big[:1<<20-64]))
		require.NoError(t, err)
	}
	const most = 4 << 20 // a quarter of the values, for anything else running
	n := allocated(func() {
		page, err := db.List(ctx, run, []byte("k"), strata.ListOptions{})
		require.NoError(t, err)
		require.Len(t, page.Keys, 16)
	})
	require.Less(t, n, uint64(most), "List")
	n = allocated(func() {
		names, err := db.StateList(ctx, run, "s")
		require.NoError(t, err)
		require.Len(t, names, 16)
	})
	require.Less(t, n, uint64(most), "StateList")
	n = allocated(func() {
		tx, err := db.Begin(ctx, run)
		require.NoError(t, err)
		keys, err := tx.List([]byte("k"))
		require.NoError(t, err)
		require.Len(t, keys, 16)
		require.NoError(t, tx.Put([]byte("w"), value.Int(1)))
		_, err = db.Put(ctx, run, []byte("other"), value.Int(1)) // so the commit checks the listed prefix again
		require.NoError(t, err)
		_, err = tx.Commit()
		require.NoError(t, err)
	})
	require.Less(t, n, uint64(most), "a transaction's List and its commit")
}

// Calls that need only whether a key exists, or its version, read no value:
// Exists (direct and in a transaction), a transaction's Delete, and the
// commit's check of what a transaction read or CASed.
func TestExistenceChecksDoNotCopyValues(t *testing.T) {
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	big := make([]byte, 8<<20)
	for _, k := range []string{"a", "b"} {
		_, err := db.Put(ctx, run, []byte(k), value.Bytes(big))
		require.NoError(t, err)
	}
	const most = 2 << 20 // a quarter of one value
	require.Less(t, allocated(func() {
		ok, err := db.Exists(ctx, run, []byte("a"))
		require.NoError(t, err)
		require.True(t, ok)
	}), uint64(most), "Exists")
	require.Less(t, allocated(func() {
		tx, err := db.Begin(ctx, run)
		require.NoError(t, err)
		defer tx.End()
		ok, err := tx.Exists([]byte("a"))
		require.NoError(t, err)
		require.True(t, ok)
		existed, err := tx.Delete([]byte("b"))
		require.NoError(t, err)
		require.True(t, existed)
	}), uint64(most), "a transaction's Exists and Delete")
	require.Less(t, allocated(func() {
		tx, err := db.Begin(ctx, run)
		require.NoError(t, err)
		_, err = tx.Exists([]byte("a"))
		require.NoError(t, err)
		cur, err := db.Exists(ctx, run, []byte("b"))
		require.NoError(t, err)
		require.True(t, cur)
		require.NoError(t, tx.Put([]byte("w"), value.Int(1)))
		_, err = db.Put(ctx, run, []byte("other"), value.Int(1)) // so the commit checks its read of "a"
		require.NoError(t, err)
		_, err = tx.Commit()
		require.NoError(t, err)
	}), uint64(most), "the commit's check of a read")
}

// CacheSize bounds the index of newest versions too: with a small cache,
// reading back many keys leaves far less on the heap than with the
// default.
func TestCacheSizeBoundsTheLatestIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 150k keys twice")
	}
	heapAfter := func(cache int64) uint64 {
		db, err := strata.OpenWith(strata.Options{Ephemeral: true, CacheSize: cache, MemTableSize: 1 << 20})
		require.NoError(t, err)
		defer db.Close()
		run := strata.NewRunID()
		val := value.Bytes(make([]byte, 100))
		for i := range 150_000 {
			k := fmt.Appendf(nil, "key%06d", i)
			_, err := db.Put(ctx, run, k, val)
			require.NoError(t, err)
			_, err = db.Get(ctx, run, k) // teaches the index
			require.NoError(t, err)
		}
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	small, large := heapAfter(1<<20), heapAfter(strata.DefaultCacheSize)
	t.Logf("heap in use: %d MiB with a 1 MiB cache, %d MiB with the default", small>>20, large>>20)
	require.Less(t, small+20<<20, large, "a 1 MiB cache keeps a small index")
}
