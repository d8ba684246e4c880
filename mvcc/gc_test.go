package mvcc_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/stretchr/testify/require"
)

// ---- Helpers ----

// historyOf returns the stored versions of (run, tag, key), newest first.
func historyOf(t *testing.T, s *mvcc.Store, run keyenc.RunID, tag keyenc.Tag, key string) []mvcc.Record {
	t.Helper()
	var out []mvcc.Record
	for rec, err := range s.History(run, tag, []byte(key), keyenc.MaxVersion) {
		require.NoError(t, err)
		out = append(out, rec)
	}
	return out
}

// versionsOf returns the stored version numbers of a runA KV key, newest
// first.
func versionsOf(t *testing.T, s *mvcc.Store, key string) []uint64 {
	t.Helper()
	var out []uint64
	for _, r := range historyOf(t, s, runA, keyenc.TagKV, key) {
		out = append(out, r.Version)
	}
	return out
}

// keepN returns a keep function that keeps n versions of every key.
func keepN(n int) func([]byte, int, mvcc.VersionMeta) bool {
	return func(_ []byte, i int, _ mvcc.VersionMeta) bool { return i < n }
}

// publishLog records the horizons Prune publishes.
type publishLog struct{ calls []uint64 }

func (p *publishLog) publish(h uint64) error {
	p.calls = append(p.calls, h)
	return nil
}

// gcFixture writes the keys of TestPruneKeepsTheNewestVersions: "one" with
// 1 version, "three" with 3 (a tombstone in the middle), "ten" with 10 (a
// tombstone in the middle and as the newest). The writes interleave, so
// versions of one key are not consecutive. It returns each key's versions,
// oldest first, with their metadata.
func gcFixture(t *testing.T, s *mvcc.Store) map[string][]mvcc.VersionMeta {
	t.Helper()
	out := map[string][]mvcc.VersionMeta{}
	write := func(w mvcc.Write) {
		c := commit(t, s, w)
		out[string(w.Key)] = append(out[string(w.Key)], mvcc.VersionMeta{Version: c.Version, Timestamp: c.Timestamp, Kind: w.Kind})
	}
	for i := range 10 {
		switch {
		case i == 4 || i == 9:
			write(del("ten"))
		default:
			write(put("ten", fmt.Sprint("ten-", i)))
		}
		switch i {
		case 2, 6:
			write(put("three", fmt.Sprint("three-", i)))
		case 4:
			write(del("three"))
		case 5:
			write(put("one", "one"))
		}
	}
	return out
}

// ---- Tests ----

// Prune keeps exactly the newest versions keep asks for (at least one), and
// reads at or above the horizon it reports see what they saw before.
func TestPruneKeepsTheNewestVersions(t *testing.T) {
	for _, keep := range []int{-1, 0, 1, 2, 3, 5, 10, 11} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			ts := newStore(t)
			want := gcFixture(t, ts.s)
			require.Len(t, want["one"], 1)
			require.Len(t, want["three"], 3)
			require.Len(t, want["ten"], 10)
			visible := ts.s.Visible()
			type read struct {
				rec   mvcc.Record
				found bool
			}
			before := map[string][]read{} // key -> reads at versions 0..visible
			for k := range want {
				for v := range visible + 1 {
					rec, found := get(t, ts.s, k, v)
					before[k] = append(before[k], read{rec, found})
				}
			}

			var seen []string
			given := map[string][]mvcc.VersionMeta{}
			var pl publishLog
			st, err := ts.s.Prune(runA, keyenc.TagKV, nil, func(key []byte, i int, v mvcc.VersionMeta) bool {
				if i == 0 {
					seen = append(seen, string(key))
				}
				require.Len(t, given[string(key)], i)
				given[string(key)] = append(given[string(key)], v)
				return i < keep
			}, pl.publish)
			require.NoError(t, err)
			require.Equal(t, []string{"one", "ten", "three"}, seen, "keys come in key order")
			for k, vs := range given {
				newestFirst := slices.Clone(want[k])
				slices.Reverse(newestFirst)
				// Up to and including the first version keep refuses (the
				// newest stays whatever keep says).
				require.Equal(t, newestFirst[:min(len(newestFirst), max(keep, 1)+1)], vs, "keep gets the versions of %q newest first", k)
			}

			kept := max(keep, 1)
			var removed int64
			var horizon uint64
			for k, vs := range want {
				n := min(kept, len(vs))
				var wantVersions []uint64
				for i := len(vs) - 1; i >= len(vs)-n; i-- {
					wantVersions = append(wantVersions, vs[i].Version)
				}
				require.Equal(t, wantVersions, versionsOf(t, ts.s, k), "key %q keeps its %d newest versions", k, n)
				if n < len(vs) {
					removed += int64(len(vs) - n)
					horizon = max(horizon, vs[len(vs)-n].Version)
				}
			}
			require.Equal(t, mvcc.PruneStats{Keys: 3, Removed: removed, Horizon: horizon}, st)
			if removed == 0 {
				require.Empty(t, pl.calls, "nothing to remove: nothing published")
			} else {
				require.Equal(t, []uint64{horizon}, pl.calls, "one chunk: one publish of its horizon")
			}

			for k := range want {
				for v := horizon; v <= visible; v++ {
					rec, found := get(t, ts.s, k, v)
					require.Equal(t, before[k][v], read{rec, found}, "read of %q at %d >= horizon %d", k, v, horizon)
				}
			}
			rec, found := get(t, ts.s, "ten", visible)
			require.True(t, found)
			require.True(t, rec.Deleted(), "a newest tombstone is never removed")
		})
	}
}

// An empty (run, tag) examines nothing and publishes nothing.
func TestPruneEmpty(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("k", "1"), put("k2", "1"))
	var pl publishLog
	st, err := ts.s.Prune(runB, keyenc.TagKV, nil, keepN(1), pl.publish)
	require.NoError(t, err)
	require.Equal(t, mvcc.PruneStats{}, st)
	require.Empty(t, pl.calls)
}

// Prune publishes a chunk's horizon while the chunk's versions are all
// still stored.
func TestPrunePublishesBeforeRemoving(t *testing.T) {
	ts := newStore(t)
	var vs []uint64
	for i := range 4 {
		vs = append(vs, commit(t, ts.s, put("k", fmt.Sprint(i))).Version)
	}
	slices.Reverse(vs)
	calls := 0
	st, err := ts.s.Prune(runA, keyenc.TagKV, nil, keepN(2), func(h uint64) error {
		calls++
		require.Equal(t, vs[1], h)
		require.Equal(t, vs, versionsOf(t, ts.s, "k"), "nothing is removed before its horizon is published")
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, calls)
	require.Equal(t, mvcc.PruneStats{Keys: 1, Removed: 2, Horizon: vs[1]}, st)
	require.Equal(t, vs[:2], versionsOf(t, ts.s, "k"))
}

// A failed publish stops Prune before it removes what that publish covers.
func TestPrunePublishErrorRemovesNothing(t *testing.T) {
	ts := newStore(t)
	for i := range 5 {
		commit(t, ts.s, put("a", fmt.Sprint(i)), put("b", fmt.Sprint(i)))
	}
	wantA, wantB := versionsOf(t, ts.s, "a"), versionsOf(t, ts.s, "b")
	errPublish := errors.New("horizon not stored")
	st, err := ts.s.Prune(runA, keyenc.TagKV, nil, keepN(1), func(uint64) error { return errPublish })
	require.ErrorIs(t, err, errPublish)
	require.Zero(t, st.Removed)
	require.Equal(t, wantA, versionsOf(t, ts.s, "a"), "a failed publish removes nothing")
	require.Equal(t, wantB, versionsOf(t, ts.s, "b"))
}

// A publish failing at the second chunk leaves the first chunk's removals
// and removes nothing more.
func TestPrunePublishErrorStopsLaterChunks(t *testing.T) {
	ts := newStore(t)
	const keys = 1500
	for range 3 {
		var ws []mvcc.Write
		for i := range keys {
			ws = append(ws, put(fmt.Sprintf("k%04d", i), "v"))
		}
		commit(t, ts.s, ws...)
	}
	errPublish := errors.New("horizon not stored")
	calls := 0
	st, err := ts.s.Prune(runA, keyenc.TagKV, nil, keepN(1), func(uint64) error {
		if calls++; calls == 2 {
			return errPublish
		}
		return nil
	})
	require.ErrorIs(t, err, errPublish)
	require.Equal(t, 2, calls)
	// Each key gives 2 removals; a chunk is flushed once it holds >= 1024.
	require.Equal(t, int64(1024), st.Removed, "only the first chunk was applied")
	for i := range keys {
		want := 3
		if i < 512 {
			want = 1
		}
		require.Len(t, versionsOf(t, ts.s, fmt.Sprintf("k%04d", i)), want, "key %d", i)
	}
}

// Prune touches only the (run, tag) it is given.
func TestPruneLeavesOtherRunsAndTags(t *testing.T) {
	ts := newStore(t)
	type space struct {
		run keyenc.RunID
		tag keyenc.Tag
	}
	spaces := []space{
		{runA, keyenc.TagKV}, {runB, keyenc.TagKV}, {runA, keyenc.TagState},
		{runA, keyenc.TagEvent}, {runA, keyenc.TagRunMeta}, {keyenc.RunID{0x9}, keyenc.TagKV},
	}
	for i := range 4 {
		var ws []mvcc.Write
		for _, sp := range spaces {
			for _, k := range []string{"a", "k", "z"} {
				ws = append(ws, mvcc.Write{Run: sp.run, Tag: sp.tag, Key: []byte(k), Kind: keyenc.KindBytes, Payload: []byte{byte(i)}})
			}
		}
		commit(t, ts.s, ws...)
	}
	var seen []string
	st, err := ts.s.Prune(runA, keyenc.TagKV, nil, func(key []byte, i int, _ mvcc.VersionMeta) bool {
		if i == 0 {
			seen = append(seen, string(key))
		}
		return i < 1
	}, func(uint64) error { return nil })
	require.NoError(t, err)
	require.Equal(t, []string{"a", "k", "z"}, seen)
	require.Equal(t, mvcc.PruneStats{Keys: 3, Removed: 9, Horizon: 4}, st)
	for _, sp := range spaces {
		for _, k := range []string{"a", "k", "z"} {
			want := 4
			if sp == (space{runA, keyenc.TagKV}) {
				want = 1
			}
			require.Len(t, historyOf(t, ts.s, sp.run, sp.tag, k), want, "run %x tag %d key %q", sp.run, sp.tag, k)
		}
	}
}

// Over 1024 removals, Prune works in chunks: each publish comes before its
// chunk is removed and carries the highest oldest-kept version of the keys
// pruned so far, so the published horizon never decreases.
func TestPruneChunks(t *testing.T) {
	const keys, perKey = 1500, 3
	for _, order := range []string{"ascending", "descending"} {
		t.Run(order, func(t *testing.T) {
			ts := newStore(t)
			// Keys go in blocks of 100; each block gets its own 3 commits, so
			// the blocks' oldest kept versions differ. In descending order
			// the first keys (in key order) get the highest versions.
			const block = 100
			oldestKept := make([]uint64, keys)
			for j := range keys / block {
				b := j
				if order == "descending" {
					b = keys/block - 1 - j
				}
				for r := range perKey {
					var ws []mvcc.Write
					for i := b * block; i < (b+1)*block; i++ {
						ws = append(ws, put(fmt.Sprintf("k%04d", i), fmt.Sprint(r)))
					}
					c := commit(t, ts.s, ws...)
					for i := b * block; i < (b+1)*block; i++ {
						oldestKept[i] = c.Version
					}
				}
			}
			// A chunk is flushed once it holds >= 1024 removals: after key
			// 511 and key 1023 (2 removals per key), then at the end.
			flushAfter := []int{511, 1023, keys - 1}
			var want []uint64
			var h uint64
			for i := range keys {
				h = max(h, oldestKept[i])
				if slices.Contains(flushAfter, i) {
					want = append(want, h)
				}
			}
			var got []uint64
			st, err := ts.s.Prune(runA, keyenc.TagKV, nil, keepN(1), func(h uint64) error {
				// The chunk ending at flushAfter[n] is still whole; the
				// chunk before it is already removed.
				n := len(got)
				first, last := 0, flushAfter[n]
				if n > 0 {
					first = flushAfter[n-1] + 1
					require.Len(t, versionsOf(t, ts.s, fmt.Sprintf("k%04d", first-1)), 1, "the previous chunk is removed")
				}
				require.Len(t, versionsOf(t, ts.s, fmt.Sprintf("k%04d", first)), perKey, "publish comes before removal")
				require.Len(t, versionsOf(t, ts.s, fmt.Sprintf("k%04d", last)), perKey, "publish comes before removal")
				got = append(got, h)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.True(t, slices.IsSorted(got), "published horizons never decrease")
			require.Equal(t, mvcc.PruneStats{Keys: keys, Removed: keys * (perKey - 1), Horizon: want[len(want)-1]}, st)
			for i := range keys {
				require.Equal(t, []uint64{oldestKept[i]}, versionsOf(t, ts.s, fmt.Sprintf("k%04d", i)))
			}
		})
	}
}

// A key with more versions than a chunk is pruned in chunks too: Prune
// never holds more than a chunk of removals, however many versions one key
// has.
func TestPruneChunksWithinOneKey(t *testing.T) {
	ts := newStore(t)
	const versions = 3000
	var newest uint64
	for i := range versions {
		newest = commit(t, ts.s, put("hot", fmt.Sprint(i))).Version
	}
	var stored []int
	st, err := ts.s.Prune(runA, keyenc.TagKV, nil, keepN(1), func(h uint64) error {
		require.Equal(t, newest, h, "the oldest kept version is the newest")
		stored = append(stored, len(versionsOf(t, ts.s, "hot")))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []int{versions, versions - 1024, versions - 2048}, stored, "a publish before each chunk of 1024")
	require.Equal(t, mvcc.PruneStats{Keys: 1, Removed: versions - 1, Horizon: newest}, st)
	require.Equal(t, []uint64{newest}, versionsOf(t, ts.s, "hot"))
}

// Removals survive a reopen (they need no commit version), and the store
// continues at its version.
func TestPruneSurvivesReopen(t *testing.T) {
	ts := newStore(t)
	for i := range 3 {
		commit(t, ts.s, put("k", fmt.Sprint(i)))
	}
	_, err := ts.s.Prune(runA, keyenc.TagKV, nil, keepN(1), func(uint64) error { return nil })
	require.NoError(t, err)
	ts.reopen(t)
	require.Equal(t, []uint64{3}, versionsOf(t, ts.s, "k"))
	require.Equal(t, uint64(3), ts.s.Visible(), "pruning takes no version")
	require.Equal(t, uint64(4), commit(t, ts.s, put("k", "next")).Version)
}
