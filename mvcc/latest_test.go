package mvcc

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

// The latest index never makes a read return anything but the newest
// version at or below its snapshot: checked against a model, with an index
// too small for every key (so some keys are always read the slow way), reads
// at old snapshots, and a reopen (which empties the index while the store
// keeps its history).
func TestLatestIndexAgreesWithTheModel(t *testing.T) {
	// Budgets: no cached records, a few, all of them.
	for _, budget := range []int64{0, 96, 1 << 20} {
		t.Run(fmt.Sprintf("cache=%d", budget), func(t *testing.T) { testLatestIndexModel(t, budget) })
	}
}

func testLatestIndexModel(t *testing.T, budget int64) {
	fs := vfs.NewMem()
	open := func() (*pebbleadapter.DB, *Store) {
		db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: "db", FS: fs})
		require.NoError(t, err)
		s, err := Open(db)
		require.NoError(t, err)
		s.latest = newLatestIndex(8, budget, s.Applied(), s.applied.Load)
		return db, s
	}
	db, s := open()
	run := keyenc.RunID{1}
	type ver struct {
		v   uint64
		val string // "" for a deletion
	}
	hist := map[string][]ver{}
	want := func(k string, at uint64) (string, uint64) {
		var best ver
		for _, h := range hist[k] {
			if h.v <= at {
				best = h
			}
		}
		return best.val, best.v
	}
	check := func(k string, at uint64) {
		// Stat first: what it teaches the index (a version without its
		// record) must not make the Get after it lose the payload.
		st, stFound, err := s.Stat(run, keyenc.TagKV, []byte(k), at)
		require.NoError(t, err)
		require.Nil(t, st.Payload, "Stat reads no payload")
		rec, found, err := s.Get(run, keyenc.TagKV, []byte(k), at)
		require.NoError(t, err)
		require.Equal(t, found, stFound)
		require.Equal(t, rec.Version, st.Version)
		require.Equal(t, rec.Kind, st.Kind)
		require.Equal(t, rec.Timestamp, st.Timestamp)
		val, v := want(k, at)
		if val == "" {
			require.True(t, !found || rec.Deleted(), "%s at %d: want absent, got %+v", k, at, rec)
			return
		}
		require.True(t, found && !rec.Deleted(), "%s at %d: want %q", k, at, val)
		require.Equal(t, v, rec.Version)
		require.Equal(t, val, string(rec.Payload))
	}
	r := rand.New(rand.NewPCG(3, 9))
	for i := range 400 {
		k := fmt.Sprintf("k%d", r.IntN(10))
		w := Write{Run: run, Tag: keyenc.TagKV, Key: []byte(k), Kind: keyenc.KindBytes, Payload: fmt.Appendf(nil, "v%d", i)}
		if r.IntN(4) == 0 {
			w.Kind, w.Payload = keyenc.KindTombstone, nil
		}
		c, err := s.Apply([]Write{w}, false)
		require.NoError(t, err)
		require.NoError(t, c.Publish())
		hist[k] = append(hist[k], ver{c.Version, string(w.Payload)})
		for j := range 10 {
			kk := fmt.Sprintf("k%d", j)
			check(kk, s.Visible())
			check(kk, r.Uint64N(s.Visible()+1)) // time travel, may teach nothing
		}
		if i == 200 {
			require.NoError(t, db.Close())
			db, s = open()
			// Right after a reopen, old snapshots first: they must not
			// teach the empty index anything.
			for j := range 10 {
				check(fmt.Sprintf("k%d", j), r.Uint64N(s.Visible()))
			}
		}
	}
	require.NoError(t, db.Close())
}

// A key whose commit is in flight reads the slow way, even at MaxVersion.
func TestLatestIndexInFlightReadsSlowly(t *testing.T) {
	s := openMemStore(t)
	run := keyenc.RunID{2}
	c, err := s.Apply([]Write{{Run: run, Tag: keyenc.TagKV, Key: []byte("k"), Kind: keyenc.KindBytes, Payload: []byte("v")}}, false)
	require.NoError(t, err)
	require.NoError(t, c.Publish())
	prefix := keyenc.AppendPrefix(nil, run, keyenc.TagKV, []byte("k"))
	require.True(t, s.latest.writing(prefix).tracks(), "a second write is tracked") // as a commit about to apply would
	for _, at := range []uint64{1, keyenc.MaxVersion} {
		rec, found, err := s.Get(run, keyenc.TagKV, []byte("k"), at)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, uint64(1), rec.Version)
	}
	s.latest.applied(prefix, trackedTicket(s.latest, prefix), 7, keyenc.KindBytes, 1, []byte("seven"))
	s.latest.applied(prefix, trackedTicket(s.latest, prefix), 5, keyenc.KindBytes, 1, []byte("five")) // an older commit finishing late does not go back
	v, _, _ := s.latest.get(prefix, false)
	require.Equal(t, uint64(7), v)
}

// A record served from the cache is the stored record (same version, kind,
// timestamp and payload as the slow path reads) and the caller's own copy.
func TestLatestIndexCachedRecordIsTheStoredOne(t *testing.T) {
	s := openMemStore(t)
	run := keyenc.RunID{7}
	var c *Commit
	var err error
	for range 2 { // the second write is tracked
		c, err = s.Apply([]Write{{Run: run, Tag: keyenc.TagKV, Key: []byte("k"), Kind: keyenc.KindValue, Payload: []byte("payload")}}, false)
		require.NoError(t, err)
		require.NoError(t, c.Publish())
	}

	prefix := keyenc.AppendPrefix(nil, run, keyenc.TagKV, []byte("k"))
	v, cached, ok := s.latest.get(prefix, false)
	require.True(t, ok)
	require.Equal(t, c.Version, v)
	require.NotNil(t, cached, "a small record is cached")

	fast, found, err := s.Get(run, keyenc.TagKV, []byte("k"), c.Version)
	require.NoError(t, err)
	require.True(t, found)
	s.latest = newLatestIndex(8, 0, s.Applied(), s.applied.Load) // force the slow path
	slow, found, err := s.Get(run, keyenc.TagKV, []byte("k"), c.Version)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, slow, fast)
	require.Equal(t, c.Timestamp, fast.Timestamp)

	fast.Payload[0] = 'X' // the caller owns its copy
	again, _, err := s.Get(run, keyenc.TagKV, []byte("k"), c.Version)
	require.NoError(t, err)
	require.Equal(t, "payload", string(again.Payload))
}

// A read without the payload (Stat) teaches the index a key's version but
// no record; the next read with the payload fills the record in, so later
// reads need no Pebble access. Stat never caches what it did not read.
func TestLatestIndexStatThenGetFillsTheRecord(t *testing.T) {
	s := openMemStore(t)
	run := keyenc.RunID{7}
	c, err := s.Apply([]Write{{Run: run, Tag: keyenc.TagKV, Key: []byte("k"), Kind: keyenc.KindValue, Payload: []byte("payload")}}, false)
	require.NoError(t, err)
	require.NoError(t, c.Publish())
	prefix := keyenc.AppendPrefix(nil, run, keyenc.TagKV, []byte("k"))
	_, _, ok := s.latest.get(prefix, false)
	require.False(t, ok, "a first write is not tracked")

	st, found, err := s.Stat(run, keyenc.TagKV, []byte("k"), c.Version)
	require.NoError(t, err)
	require.True(t, found)
	require.Nil(t, st.Payload)
	v, cached, ok := s.latest.get(prefix, false)
	require.True(t, ok, "the Stat taught the version")
	require.Equal(t, c.Version, v)
	require.Nil(t, cached, "but no record")

	rec, found, err := s.Get(run, keyenc.TagKV, []byte("k"), c.Version)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "payload", string(rec.Payload))
	_, cached, _ = s.latest.get(prefix, false)
	require.NotNil(t, cached, "the Get filled the record in")
	again, _, err := s.Get(run, keyenc.TagKV, []byte("k"), c.Version)
	require.NoError(t, err)
	require.Equal(t, rec, again)
}

// A key going in flight drops its cached record: no read can get the old
// record once a newer version may be visible.
func TestLatestIndexInFlightDropsTheRecord(t *testing.T) {
	x := newLatestIndex(8, 1<<20, 0, func() uint64 { return 4 })
	p := []byte("prefix")
	require.False(t, write(x, p, 2), "a first write is not tracked")
	require.True(t, x.writing(p).tracks())
	x.applied(p, trackedTicket(x, p), 3, keyenc.KindBytes, 1, []byte("three"))
	_, rec, _ := x.get(p, false)
	require.NotNil(t, rec)
	x.writing(p)
	v, rec, ok := x.get(p, false)
	require.True(t, ok)
	require.Equal(t, inFlight, v)
	require.Nil(t, rec)
	x.applied(p, trackedTicket(x, p), 4, keyenc.KindBytes, 2, []byte("four"))
	v, rec, _ = x.get(p, false)
	require.Equal(t, uint64(4), v)
	h, payload, err := keyenc.DecodeHeader(rec)
	require.NoError(t, err)
	require.Equal(t, "four", string(payload))
	require.Equal(t, int64(2), h.Timestamp)
	// Over budget, versions are still tracked but records are not cached.
	y := newLatestIndex(8, 0, 0, func() uint64 { return 5 })
	write(y, p, 4)
	require.True(t, write(y, p, 5))
	v, rec, _ = y.get(p, false)
	require.Equal(t, uint64(5), v)
	require.Nil(t, rec)
}

// A full index makes room for a commit's key by evicting an entry that is
// not in flight, after raising the floor to the highest applied version: a
// read below the floor never adds an entry, since a version newer than its
// snapshot may be one the index forgot.
func TestLatestIndexEvictionRaisesTheFloor(t *testing.T) {
	applied := uint64(10)
	// One entry per shard; b shares a's shard.
	x := newLatestIndex(int64(len(latestIndex{}.shards)), 1<<20, 3, func() uint64 { return applied })
	a := []byte("a")
	b := sameShard(x, a)
	write(x, a, 4)
	write(x, a, 5)
	require.Equal(t, uint64(3), x.floor.Load())
	require.False(t, write(x, b, 6), "a first write of b is not tracked")
	_, _, ok := x.get(b, false)
	require.False(t, ok)
	_, _, ok = x.get(a, false)
	require.True(t, ok)
	require.True(t, x.writing(b).tracks()) // its second write gets in: a goes
	_, _, ok = x.get(a, false)
	require.False(t, ok, "the oldest entry was evicted")
	require.Equal(t, uint64(10), x.floor.Load(), "after the floor was raised to the applied version")
	require.Equal(t, int64(1), x.len())

	// An entry in flight is never evicted: the shard grows instead.
	y := newLatestIndex(int64(len(latestIndex{}.shards)), 1<<20, 0, func() uint64 { return applied })
	p := []byte("p")
	write(y, p, 1)
	require.True(t, y.writing(p).tracks()) // in flight
	q := sameShard(y, p)
	write(y, q, 2)
	require.True(t, y.writing(q).tracks())
	_, _, ok = y.get(q, false)
	require.True(t, ok, "admitted on its second write")
	v, _, ok := y.get(p, false)
	require.True(t, ok)
	require.Equal(t, inFlight, v)

	// Reads below the floor teach nothing; at or above it they do, while
	// the shard has room.
	z := newLatestIndex(64, 1<<20, 7, func() uint64 { return applied })
	z.read([]byte("r"), 6, 2, Record{Version: 2, Kind: keyenc.KindBytes}, true)
	_, _, ok = z.get([]byte("r"), false)
	require.False(t, ok, "a read below the floor must not add an entry")
	z.read([]byte("r"), 7, 2, Record{Version: 2, Kind: keyenc.KindBytes}, true)
	v, _, ok = z.get([]byte("r"), false)
	require.True(t, ok)
	require.Equal(t, uint64(2), v)
}

// Eviction goes in insertion order, skipping entries in flight, and keeps
// every shard at its share of the bound.
func TestLatestIndexEvictsOldestFirst(t *testing.T) {
	x := newLatestIndex(3*int64(len(latestIndex{}.shards)), 1<<20, 0, func() uint64 { return 1 })
	keys := [][]byte{[]byte("k0")}
	for len(keys) < 6 {
		keys = append(keys, sameShard(x, keys[len(keys)-1]))
	}
	for i, k := range keys[:3] {
		write(x, k, 1)
		require.True(t, x.writing(k).tracks())
		if i != 0 {
			x.applied(k, trackedTicket(x, k), 1, keyenc.KindBytes, 1, nil)
		}
	}
	require.False(t, write(x, keys[3], 1)) // the shard is full: remembered, not tracked
	require.True(t, write(x, keys[3], 1))  // admitted; k0 is in flight: the next oldest goes
	present := func() (out []int) {
		for i, k := range keys {
			if _, _, ok := x.get(k, false); ok {
				out = append(out, i)
			}
		}
		return out
	}
	require.Equal(t, []int{0, 2, 3}, present())
	x.applied(keys[0], trackedTicket(x, keys[0]), 1, keyenc.KindBytes, 1, nil)
	for _, k := range keys[4:] {
		write(x, k, 1)
		write(x, k, 1)
	}
	require.Equal(t, []int{3, 4, 5}, present())
}

// write runs a commit's two index steps for p at version v and reports
// whether the index tracked it.
func write(x *latestIndex, p []byte, v uint64) bool {
	t := x.writing(p)
	x.applied(p, t, v, keyenc.KindBytes, 1, nil)
	return t.tracks()
}

// trackedTicket is the ticket writing returns for p when it tracks p.
func trackedTicket(x *latestIndex, p []byte) writeTicket {
	_, h := x.shardHash(p)
	return writeTicket(h%uint64(len(x.shards))) | ticketTracked
}

// openMemStore opens a Store on a fresh in-memory filesystem, closed when
// the test ends.
func openMemStore(t *testing.T) *Store {
	t.Helper()
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: "db", FS: vfs.NewMem()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s, err := Open(db)
	require.NoError(t, err)
	return s
}

// sameShard returns a key other than k in k's shard.
func sameShard(x *latestIndex, k []byte) []byte {
	sk, _ := x.shardHash(k)
	for i := 0; ; i++ {
		c := fmt.Appendf(nil, "%s/%d", k, i)
		if sc, _ := x.shardHash(c); sc == sk {
			return c
		}
	}
}

// Event keys are written once and read in ranges: the index does not track
// them, and reads of them still find them.
func TestLatestIndexSkipsEventKeys(t *testing.T) {
	s := openMemStore(t)
	run := keyenc.RunID{9}
	c, err := s.Apply([]Write{
		{Run: run, Tag: keyenc.TagEvent, Key: []byte{0, 0, 0, 0, 0, 0, 0, 0}, Kind: keyenc.KindBytes, Payload: []byte("e0")},
		{Run: run, Tag: keyenc.TagKV, Key: []byte("k"), Kind: keyenc.KindBytes, Payload: []byte("v")},
	}, false)
	require.NoError(t, err)
	require.NoError(t, c.Publish())
	require.Zero(t, s.latest.len(), "first writes are not tracked")
	rec, found, err := s.Get(run, keyenc.TagKV, []byte("k"), c.Version)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, int64(1), s.latest.len(), "a read of the KV key teaches it")
	rec, found, err = s.Get(run, keyenc.TagEvent, []byte{0, 0, 0, 0, 0, 0, 0, 0}, c.Version)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "e0", string(rec.Payload))
	require.Equal(t, int64(1), s.latest.len(), "a read of an event key adds nothing")
}

// len returns the number of entries, for tests.
func (x *latestIndex) len() int64 {
	n := 0
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return int64(n)
}

// A write the index does not track blocks reads of its shard from teaching
// until it is applied, and afterwards reads below its version still teach
// nothing: either could record a version older than the key's newest.
func TestLatestIndexUntrackedWriteBlocksTeaching(t *testing.T) {
	x := newLatestIndex(64, 1<<20, 0, func() uint64 { return 6 })
	p := []byte("p")
	q := sameShard(x, p)
	old := Record{Version: 3, Kind: keyenc.KindBytes}
	ticket := x.writing(p) // a first write, in flight
	require.False(t, ticket.tracks())
	x.read(p, 5, 3, old, true)
	x.read(q, 5, 3, old, true)
	require.Zero(t, x.len(), "no read teaches a shard while an untracked write is in flight")
	x.applied(p, ticket, 6, keyenc.KindBytes, 1, nil)
	x.read(p, 5, 3, old, true)
	require.Zero(t, x.len(), "a read below the untracked mark teaches nothing")
	x.read(p, 6, 6, Record{Version: 6, Kind: keyenc.KindBytes}, true)
	v, _, ok := x.get(p, false)
	require.True(t, ok, "a read at the mark teaches")
	require.Equal(t, uint64(6), v)
}

// Readers racing a writer that writes fresh keys (untracked first writes)
// and rewrites recent ones, some of them after a commit of the same key was
// refused, never read a version older than one published before their
// snapshot, whatever the index learned from reads in between.
// The readers read the keys being written right now, where a read that
// taught the index a version (or an absence) overtaken by the write would
// show.
func TestLatestIndexConcurrentReadsAreNeverStale(t *testing.T) {
	s := openMemStore(t)
	run := keyenc.RunID{5}
	const keys = 30000
	key := func(i int) []byte { return fmt.Appendf(nil, "k%d", i) }
	var published [keys]atomic.Uint64
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for !stop.Load() {
				i := max(0, int(next.Load())+r.IntN(4)-2)
				if i >= keys {
					continue
				}
				want := published[i].Load()
				at := s.Visible()
				rec, found, err := s.Get(run, keyenc.TagKV, key(i), at)
				if err != nil {
					t.Error(err)
					return
				}
				if want != 0 && (!found || rec.Version < want) {
					t.Errorf("key %d at %d: read version %d (found %v), %d was published before", i, at, rec.Version, found, want)
					return
				}
			}
		})
	}
	r := rand.New(rand.NewPCG(9, 9))
	for i := range keys {
		if i > 0 && r.IntN(2) == 0 {
			i = i - 1 - r.IntN(min(i, 3)) // rewrite a recent key
		} else {
			next.Store(int64(i))
		}
		w := []Write{{Run: run, Tag: keyenc.TagKV, Key: key(i), Kind: keyenc.KindBytes, Payload: []byte("v")}}
		if r.IntN(4) == 0 {
			// A commit of the key refused as it is sequenced first: its
			// marks in the index are undone (abandoned).
			var refused Commit
			require.True(t, IsRefused(s.ApplyTo(cancelled, &refused, w, false)))
		}
		c, err := s.Apply(w, false)
		require.NoError(t, err)
		require.NoError(t, c.Publish())
		published[i].Store(c.Version)
	}
	stop.Store(true)
	wg.Wait()
}

// cancelled is a context that has ended.
var cancelled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Fresh keys written once are almost never tracked (the admission filter's
// false positives), and a key written again soon is.
func TestLatestIndexAdmitsSecondWritesOnly(t *testing.T) {
	x := newLatestIndex(1<<20, 0, 0, func() uint64 { return 1 })
	const n = 200000
	admitted := 0
	for i := range n {
		if write(x, fmt.Appendf(nil, "fresh-%d", i), 1) {
			admitted++
		}
	}
	t.Logf("fresh keys admitted by mistake: %d of %d", admitted, n)
	require.Less(t, admitted, n/50)
	// A filter cleared between the two writes forgets the first (about one
	// clear per 4,096 keys of a shard).
	missed := 0
	for i := range 1000 {
		k := fmt.Appendf(nil, "again-%d", i)
		write(x, k, 1)
		write(x, fmt.Appendf(nil, "between-%d", i), 1)
		if !write(x, k, 2) {
			missed++
		}
	}
	require.LessOrEqual(t, missed, len(x.shards), "second writes not admitted")
}

// The membership filter has no false negatives: every key the index holds
// passes it, through additions, evictions and rebuilds of every size; and
// it keeps most keys the index does not hold away from the map.
func TestLatestIndexMembershipFilter(t *testing.T) {
	x := newLatestIndex(1<<14, 0, 0, func() uint64 { return 1 })
	checkAll := func() {
		t.Helper()
		for i := range x.shards {
			s := &x.shards[i]
			for k := range s.m {
				_, h := x.shardHash([]byte(k))
				require.True(t, s.mayHold(h), "a held key fails the filter")
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 6 {
		// Keys get in by a second write; with the index's 1,024 entries per
		// shard, the later rounds evict.
		for range 1 << (10 + round) {
			k := fmt.Appendf(nil, "k-%d", rng.Uint64())
			write(x, k, 1)
			write(x, k, 2)
		}
		checkAll()
	}
	falsePos, n := 0, 100000
	for i := range n {
		k := fmt.Appendf(nil, "absent-%d", i)
		s, h := x.shardHash(k)
		if s.mayHold(h) {
			require.Nil(t, s.m[string(k)])
			falsePos++
		}
	}
	t.Logf("false positives: %d of %d", falsePos, n)
	require.Less(t, falsePos, n/20)
}

// The latest index's size follows its memory budget: the default budget
// gives the historical bounds, small budgets shrink it, large ones are
// capped.
func TestLatestIndexSize(t *testing.T) {
	for _, c := range []struct{ memory, entries, records int64 }{
		{DefaultIndexMemory, LatestIndexEntries, LatestCacheBytes},
		{4 << 20, 16 << 10, 2 << 20},
		{1, 1024, 0},
		{1 << 30, LatestIndexEntries, LatestCacheBytes},
	} {
		entries, records := latestIndexSize(c.memory)
		require.Equal(t, c.entries, entries, "memory %d", c.memory)
		require.Equal(t, c.records, records, "memory %d", c.memory)
	}
}

// A commit refused because its context ended before it was sequenced
// writes nothing, takes no version and leaves the index sound: the keys it
// marked in flight (a tracked one, whose entry is dropped, and a fresh,
// untracked one) read their newest version, the shard learns from reads
// again, and the next commits of those keys are read back.
func TestRefusedCommitLeavesTheIndexSound(t *testing.T) {
	s := openMemStore(t)
	s.latest = newLatestIndex(16, 1<<20, s.Applied(), s.applied.Load) // an entry per shard: reads evict
	run := keyenc.RunID{9}
	write := func(k, v string) Write {
		return Write{Run: run, Tag: keyenc.TagKV, Key: []byte(k), Kind: keyenc.KindBytes, Payload: []byte(v)}
	}
	for _, v := range []string{"a1", "a2"} { // written twice: tracked
		c, err := s.Apply([]Write{write("a", v)}, false)
		require.NoError(t, err)
		require.NoError(t, c.Publish())
	}
	tracked := keyenc.AppendPrefix(nil, run, keyenc.TagKV, []byte("a"))
	_, _, ok := s.latest.get(tracked, false)
	require.True(t, ok, "a is tracked")
	before := s.Applied()

	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		ctx, cancel := context.WithCancel(context.Background())
		if cause == context.DeadlineExceeded {
			ctx, cancel = context.WithDeadline(context.Background(), time.Now()) // passed, maybe before its timer fired
		}
		cancel()
		var c Commit
		err := s.ApplyTo(ctx, &c, []Write{write("a", "refused"), write(fmt.Sprintf("fresh-%v", cause), "refused")}, false)
		require.True(t, IsRefused(err), "%v", err)
		require.ErrorIs(t, err, cause)
		require.Equal(t, before, s.Applied(), "no version was taken")
	}
	_, _, ok = s.latest.get(tracked, false)
	require.False(t, ok, "the tracked entry the refused commit put in flight is dropped")
	for sh := range s.latest.shards {
		require.Zero(t, s.latest.shards[sh].untracked.Load(), "no untracked write is left in flight")
	}
	rec, found, err := s.Get(run, keyenc.TagKV, []byte("a"), keyenc.MaxVersion)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "a2", string(rec.Payload))
	_, found, err = s.Get(run, keyenc.TagKV, []byte(fmt.Sprintf("fresh-%v", context.Canceled)), keyenc.MaxVersion)
	require.NoError(t, err)
	require.False(t, found)

	// Two other keys of a's shard, each written twice, take its one entry
	// in turn: the second evicts past the dropped entry's slot in the
	// shard's queue.
	shard, _ := s.latest.shardHash(tracked)
	var others []string
	for i := 0; len(others) < 2; i++ {
		k := fmt.Sprintf("b%d", i)
		if sh, _ := s.latest.shardHash(keyenc.AppendPrefix(nil, run, keyenc.TagKV, []byte(k))); sh == shard {
			others = append(others, k)
		}
	}
	next := before + 1
	for _, k := range append(others, "a") {
		for _, v := range []string{k + "1", k + "2"} {
			c, err := s.Apply([]Write{write(k, v)}, false)
			require.NoError(t, err)
			require.NoError(t, c.Publish())
			require.Equal(t, next, c.Version, "versions go on without a gap")
			next++
			rec, _, err = s.Get(run, keyenc.TagKV, []byte(k), keyenc.MaxVersion)
			require.NoError(t, err)
			require.Equal(t, v, string(rec.Payload))
		}
	}
}

// The index's keys count against its budget: long keys make it hold fewer
// entries, never more than keyBytesPerEntry bytes of keys per entry it may
// hold (a 4 KiB key would otherwise make each entry cost 4 KiB more than
// the index is sized for). Reads stay exact.
func TestLatestIndexBoundsKeyBytes(t *testing.T) {
	s := openMemStore(t)
	const entries = 1024
	s.latest = newLatestIndex(entries, 1<<20, s.Applied(), s.applied.Load)
	run := keyenc.RunID{1}
	key := func(i int) []byte { return fmt.Appendf(bytes.Repeat([]byte{'k'}, 4000), "%d", i) }
	const n = 600 // 2.4 MB of keys, against a budget of 64 KiB
	for i := range n {
		c, err := s.Apply([]Write{{Run: run, Tag: keyenc.TagKV, Key: key(i), Kind: keyenc.KindBytes, Payload: []byte{byte(i)}}}, false)
		require.NoError(t, err)
		require.NoError(t, c.Publish())
	}
	keyBytes := func() (sum int64, held int) {
		for i := range s.latest.shards {
			sh := &s.latest.shards[i]
			sh.mu.Lock()
			sum += sh.keyBytes
			held += len(sh.m)
			var lens int64
			for k := range sh.m {
				lens += int64(len(k))
			}
			require.Equal(t, lens, sh.keyBytes, "shard %d counts its keys' bytes", i)
			sh.mu.Unlock()
		}
		return sum, held
	}
	for round := range 3 { // reads teach the index, writes of known keys keep their entries
		for i := range n {
			rec, found, err := s.GetLatest(run, keyenc.TagKV, key(i))
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, []byte{byte(i)}, rec.Payload)
			if round == 1 {
				c, err := s.Apply([]Write{{Run: run, Tag: keyenc.TagKV, Key: key(i), Kind: keyenc.KindBytes, Payload: []byte{byte(i)}}}, false)
				require.NoError(t, err)
				require.NoError(t, c.Publish())
			}
		}
		sum, held := keyBytes()
		require.LessOrEqual(t, sum, int64(entries*keyBytesPerEntry), "round %d: %d entries", round, held)
		require.Positive(t, held, "round %d: the index still holds some keys", round)
	}
}

// A key removed other than by eviction (a commit refused before it got a
// version, version GC) leaves its FIFO slot, and its next write adds
// another. In a shard that never fills, eviction never runs: the slots, each
// holding its key, grew by one per refused commit (a black-box audit
// measured 38 MiB of 4,000-byte keys in an index bounded to about 10 MiB).
// add compacts the FIFO: its slots stay within twice the shard's keys plus
// fifoSlack, and eviction still takes the oldest key first.
func TestLatestIndexFIFOStaysBounded(t *testing.T) {
	x := newLatestIndex(1<<16, 1<<30, 0, func() uint64 { return 1 })
	hot := [][]byte{[]byte("hot")}
	for len(hot) < 8 {
		hot = append(hot, sameShard(x, hot[len(hot)-1]))
	}
	for _, k := range hot {
		write(x, k, 1)
		require.True(t, write(x, k, 1))
	}
	s, _ := x.shardHash(hot[0])
	for i := range 100_000 {
		k := hot[i%len(hot)]
		x.abandoned(k, x.writing(k)) // refused: the entry goes, its slot stays
		require.True(t, write(x, k, uint64(i+2)), "the key is tracked again")
		s.mu.Lock()
		slots, keys := len(s.fifo)-s.head, len(s.m)
		s.mu.Unlock()
		require.LessOrEqual(t, slots, 2*keys+fifoSlack, "after %d refused commits: FIFO slots for %d keys", i+1, keys)
	}
	s.mu.Lock()
	seen := map[string]bool{}
	for _, k := range s.fifo[s.head:] {
		if s.m[k] != nil {
			seen[k] = true
		}
	}
	require.Len(t, seen, len(s.m), "every key keeps a slot")
	s.mu.Unlock()
}
