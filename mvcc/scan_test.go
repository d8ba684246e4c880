package mvcc_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/stretchr/testify/require"
)

// ---- In-memory model ----

// modelRec is one version of a key in the model.
type modelRec struct {
	version   uint64
	timestamp int64
	kind      keyenc.Kind
	payload   []byte
}

// space is a (run, tag) pair: the unit Scan works in.
type space struct {
	run keyenc.RunID
	tag keyenc.Tag
}

// model is the reference the store is compared with: for every space and
// user key, its versions in commit order.
type model map[space]map[string][]modelRec

func (m model) apply(ws []mvcc.Write, version uint64, ts int64) {
	for _, w := range ws {
		sp := space{w.Run, w.Tag}
		if m[sp] == nil {
			m[sp] = map[string][]modelRec{}
		}
		m[sp][string(w.Key)] = append(m[sp][string(w.Key)],
			modelRec{version, ts, w.Kind, bytes.Clone(w.Payload)})
	}
}

// get is the newest version of key at or below at.
func (m model) get(sp space, key string, at uint64) (modelRec, bool) {
	var out modelRec
	found := false
	for _, r := range m[sp][key] {
		if r.version <= at {
			out, found = r, true
		}
	}
	return out, found
}

type modelEntry struct {
	key string
	rec modelRec
}

// scan is what Scan must yield: keys of sp with the prefix and >= start, in
// bytewise order, at their newest version <= at, deleted keys left out.
func (m model) scan(sp space, prefix, start []byte, at uint64) []modelEntry {
	keys := make([]string, 0, len(m[sp]))
	for k := range m[sp] {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Go string order is bytewise
	var out []modelEntry
	for _, k := range keys {
		if !strings.HasPrefix(k, string(prefix)) || (start != nil && k < string(start)) {
			continue
		}
		if r, ok := m.get(sp, k, at); ok && r.kind != keyenc.KindTombstone {
			out = append(out, modelEntry{k, r})
		}
	}
	return out
}

// history is what History must yield: versions <= at, newest first.
func (m model) history(sp space, key string, at uint64) []modelRec {
	var out []modelRec
	for _, r := range slices.Backward(m[sp][key]) {
		if r.version <= at {
			out = append(out, r)
		}
	}
	return out
}

// ---- Comparison helpers ----

func requireRecord(t *testing.T, want modelRec, got mvcc.Record, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, want.version, got.Version, msgAndArgs...)
	require.Equal(t, want.timestamp, got.Timestamp, msgAndArgs...)
	require.Equal(t, want.kind, got.Kind, msgAndArgs...)
	require.Equal(t, want.kind == keyenc.KindTombstone, got.Deleted(), msgAndArgs...)
	// An empty payload may come back nil: compare bytes, not slices.
	require.True(t, bytes.Equal(want.payload, got.Payload), "payload %q, want %q: %v", got.Payload, want.payload, msgAndArgs)
}

func scanAll(t *testing.T, s *mvcc.Store, sp space, prefix, start []byte, at uint64) []mvcc.Entry {
	t.Helper()
	var out []mvcc.Entry
	for e, err := range s.Scan(sp.run, sp.tag, prefix, start, at) {
		require.NoError(t, err)
		e.Payload = bytes.Clone(e.Payload) // the scan's, valid in this step only
		out = append(out, e)
	}
	return out
}

func requireScan(t *testing.T, s *mvcc.Store, m model, sp space, prefix, start []byte, at uint64) {
	t.Helper()
	got := scanAll(t, s, sp, prefix, start, at)
	want := m.scan(sp, prefix, start, at)
	ctx := fmt.Sprintf("scan run=%x tag=%d prefix=%q start=%q at=%d", sp.run[:1], sp.tag, prefix, start, at)
	gotKeys := make([]string, len(got))
	for i, e := range got {
		gotKeys[i] = string(e.Key)
	}
	wantKeys := make([]string, len(want))
	for i, e := range want {
		wantKeys[i] = e.key
	}
	require.Equal(t, wantKeys, gotKeys, ctx)
	for i := range want {
		requireRecord(t, want[i].rec, got[i].Record, ctx, want[i].key)
	}
}

// ---- Deterministic scans ----

// scanFixture writes keys with several versions and deletions, with 0x00
// and 0xFF bytes, and decoys in a neighbouring run and in another tag.
func scanFixture(t *testing.T) (*testStore, model) {
	ts := newStore(t)
	m := model{}
	w := func(ws ...mvcc.Write) {
		c := commit(t, ts.s, ws...)
		m.apply(ws, c.Version, c.Timestamp)
	}
	decoy := func(run keyenc.RunID, tag keyenc.Tag, key string) mvcc.Write {
		return mvcc.Write{Run: run, Tag: tag, Key: []byte(key), Kind: keyenc.KindBytes, Payload: []byte("decoy")}
	}
	w(put("a", "a1"), put("\x00", "z1"), put("\xff", "f1"))                   // 1
	w(put("ab", "ab2"), put("a\x00", "a0-2"), decoy(runB, keyenc.TagKV, "a")) // 2
	w(del("a"), put("b", "b3"), decoy(runA, keyenc.TagState, "b"))            // 3
	w(put("a", "a4"), put("\xff\xff", "ff4"), put("", "empty4"))              // 4
	w(del("ab"), put("a\x00b", "a0b5"))                                       // 5
	w(put("b", ""), del("\x00"), decoy(runB, keyenc.TagKV, "\x00"))           // 6: an empty value is a value
	w(del("\xff"), put("c", "c7"))                                            // 7
	w(put("ab", "ab8"), del(""))                                              // 8
	return ts, m
}

func TestScanAtEverySnapshot(t *testing.T) {
	ts, m := scanFixture(t)
	sp := space{runA, keyenc.TagKV}
	for at := uint64(0); at <= ts.s.Visible()+1; at++ {
		requireScan(t, ts.s, m, sp, nil, nil, at)
	}
	// Spot checks that the model itself says what we mean.
	keys := func(at uint64) (out []string) {
		for _, e := range scanAll(t, ts.s, sp, nil, nil, at) {
			out = append(out, string(e.Key))
		}
		return out
	}
	require.Empty(t, keys(0))
	require.Equal(t, []string{"\x00", "a", "\xff"}, keys(1))
	require.Equal(t, []string{"\x00", "a\x00", "ab", "b", "\xff"}, keys(3), "a deleted at 3")
	require.Equal(t, []string{"", "a", "a\x00", "a\x00b", "b", "c", "\xff\xff"}, keys(7))
	require.Equal(t, []string{"a", "a\x00", "a\x00b", "ab", "b", "c", "\xff\xff"}, keys(8))
}

func TestScanPrefixAndStart(t *testing.T) {
	ts, m := scanFixture(t)
	prefixes := [][]byte{nil, {}, []byte("a"), []byte("a\x00"), []byte("ab"), {0x00}, {0xFF}, {0xFF, 0xFF}, []byte("zz")}
	starts := [][]byte{nil, {}, {0x00}, []byte("a"), []byte("a\x00"), []byte("a\x00a"), []byte("aa"), []byte("b"), {0xFF}, {0xFF, 0xFF, 0xFF}}
	for _, sp := range []space{{runA, keyenc.TagKV}, {runB, keyenc.TagKV}, {runA, keyenc.TagState}, {runB, keyenc.TagJSON}} {
		for _, prefix := range prefixes {
			for _, start := range starts {
				for at := uint64(0); at <= ts.s.Visible(); at++ {
					requireScan(t, ts.s, m, sp, prefix, start, at)
				}
			}
		}
	}
}

// A start cursor resumes a scan: paging through with the last key's
// successor yields the full scan.
func TestScanPaging(t *testing.T) {
	ts, _ := scanFixture(t)
	sp := space{runA, keyenc.TagKV}
	for at := uint64(0); at <= ts.s.Visible(); at++ {
		full := scanAll(t, ts.s, sp, nil, nil, at)
		var paged []mvcc.Entry
		var start []byte
		for {
			var page []mvcc.Entry
			for e, err := range ts.s.Scan(sp.run, sp.tag, nil, start, at) {
				require.NoError(t, err)
				e.Payload = bytes.Clone(e.Payload)
				page = append(page, e)
				if len(page) == 2 {
					break
				}
			}
			paged = append(paged, page...)
			if len(page) < 2 {
				break
			}
			start = append(bytes.Clone(page[len(page)-1].Key), 0x00) // the next possible key
		}
		require.Equal(t, full, paged, "at %d", at)
	}
	require.NoError(t, ts.db.Close(), "early-stopped scans leaked no iterator")
}

func TestScanAcrossFlushes(t *testing.T) {
	ts := newStore(t)
	m := model{}
	sp := space{runA, keyenc.TagKV}
	for v := range 12 {
		ws := []mvcc.Write{put(fmt.Sprintf("k%d", v%4), fmt.Sprint(v))}
		if v%5 == 4 {
			ws = []mvcc.Write{del(fmt.Sprintf("k%d", v%4))}
		}
		c := commit(t, ts.s, ws...)
		m.apply(ws, c.Version, c.Timestamp)
		if v%3 == 2 {
			require.NoError(t, ts.db.FlushMemtable())
		}
	}
	for at := uint64(0); at <= ts.s.Visible(); at++ {
		requireScan(t, ts.s, m, sp, nil, nil, at)
		requireScan(t, ts.s, m, sp, []byte("k"), []byte("k2"), at)
	}
}

// ---- Randomized model-based test ----

// TestModelRandomized runs a few hundred random commits (puts, deletes,
// several keys per commit, several spaces, two flushes and one reopen) and then compares Get, Scan and History at every snapshot with
// the model.
func TestModelRandomized(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runModel(t, seed)
		})
	}
}

func runModel(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	keys := []string{
		"", "\x00", "\x00\x00", "\x00\xff", "a", "a\x00", "a\x00b", "a\x09", "ab", "abc", "b",
		"\xff", "\xff\x00", "\xff\xff", "\x00\x00\x00\x00\x00\x00\x00\x00\x01\x09",
	}
	spaces := []space{{runA, keyenc.TagKV}, {runB, keyenc.TagKV}, {runA, keyenc.TagState}}
	const commits = 200 // ~500 writes

	ts := newStore(t)
	m := model{}
	for i := range commits {
		n := 1 + r.IntN(4)
		used := map[string]bool{}
		var ws []mvcc.Write
		for range n {
			sp := spaces[r.IntN(len(spaces))]
			k := keys[r.IntN(len(keys))]
			id := fmt.Sprint(sp, k)
			if used[id] { // one write per key per commit
				continue
			}
			used[id] = true
			w := mvcc.Write{Run: sp.run, Tag: sp.tag, Key: []byte(k)}
			switch x := r.IntN(10); {
			case x < 3:
				w.Kind = keyenc.KindTombstone
			case x < 4:
				w.Kind = keyenc.KindBytes // empty payload
			default:
				w.Kind = keyenc.Kind(1 + r.IntN(2))
				w.Payload = fmt.Appendf(nil, "v%d\x00\xff%d", i, r.IntN(1000))
			}
			ws = append(ws, w)
		}
		c, err := ts.s.Apply(ws, r.IntN(4) == 0)
		require.NoError(t, err)
		require.Equal(t, uint64(i+1), c.Version)
		require.NoError(t, c.SyncWait())
		require.NoError(t, c.Publish())
		m.apply(ws, c.Version, c.Timestamp)

		if i == commits/4 || i == 3*commits/4 {
			// Spread versions over sstables and the memtable. (Few flushes:
			// Pebble's race-build invariants make each sstable iterator
			// costly.)
			require.NoError(t, ts.db.FlushMemtable())
		}
		if i == commits/2 {
			ts.reopen(t)
			require.Equal(t, c.Version, ts.s.Visible())
		}
	}
	require.Equal(t, uint64(commits), ts.s.Visible())

	prefixes := [][]byte{nil, []byte("a"), {0x00}, {0xFF}}
	starts := [][]byte{nil, []byte("a\x00"), []byte("ab"), {0xFF, 0x00}}
	for at := uint64(0); at <= commits+1; at++ {
		for si, sp := range spaces {
			requireScan(t, ts.s, m, sp, nil, nil, at)
			if at%10 == 0 {
				for _, p := range prefixes {
					for _, st := range starts {
						requireScan(t, ts.s, m, sp, p, st, at)
					}
				}
			}
			// Every key of every space is read at every third snapshot, in
			// turn (each read opens an iterator, which is slow under -race).
			if int(at%3) != si {
				continue
			}
			for _, k := range keys {
				want, wantFound := m.get(sp, k, at)
				got, found, err := ts.s.Get(sp.run, sp.tag, []byte(k), at)
				require.NoError(t, err)
				require.Equal(t, wantFound, found, "get %q at %d", k, at)
				if found {
					requireRecord(t, want, got, "get", k, at)
				}
			}
		}
		if at%20 == 0 {
			for _, sp := range spaces {
				for _, k := range keys {
					wantH := m.history(sp, k, at)
					var gotH []mvcc.Record
					for rec, err := range ts.s.History(sp.run, sp.tag, []byte(k), at) {
						require.NoError(t, err)
						gotH = append(gotH, rec)
					}
					require.Len(t, gotH, len(wantH), "history %q at %d", k, at)
					for i := range wantH {
						requireRecord(t, wantH[i], gotH[i], "history", k, at)
					}
				}
			}
		}
	}
}
