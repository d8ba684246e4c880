package pebbleadapter_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

var (
	iterRun   = keyenc.RunID{0xA}
	otherRun  = keyenc.RunID{0xB}
	iterUsers = [][]byte{{}, {0x00}, []byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("ab"), {0xFF}, {0xFF, 0xFF}}
	iterVers  = []uint64{1, 3, 7}
)

// value of a versioned key in these tests.
func iterValue(uk []byte, v uint64) []byte { return fmt.Appendf(nil, "%x@%d", uk, v) }

// fillIterStore writes every (user key, version) of iterUsers x iterVers in
// run iterRun tag TagKV, plus decoys in the neighbouring tag and run with the
// same user keys. It returns the TagKV keys in comparer order.
func fillIterStore(t *testing.T, db *pebbleadapter.DB) [][]byte {
	t.Helper()
	b := db.NewBatch()
	var want [][]byte
	for _, uk := range iterUsers {
		for _, v := range iterVers {
			k := keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, uk, v)
			b.Set(k, iterValue(uk, v))
			want = append(want, k)
			b.Set(keyenc.AppendVersioned(nil, iterRun, keyenc.TagEvent, uk, v), []byte("decoy tag"))
			b.Set(keyenc.AppendVersioned(nil, otherRun, keyenc.TagKV, uk, v), []byte("decoy run"))
		}
	}
	require.NoError(t, b.Apply(false))
	b.Close()
	slices.SortFunc(want, keyenc.Compare)
	return want
}

func collect(t *testing.T, it *pebbleadapter.Iter, valid bool, step func() bool) [][]byte {
	t.Helper()
	var keys [][]byte
	for ; valid; valid = step() {
		require.True(t, it.Valid())
		keys = append(keys, bytes.Clone(it.Key()))
		v, err := it.Value()
		require.NoError(t, err)
		d, err := keyenc.DecodeDataKey(it.Key())
		require.NoError(t, err)
		require.Equal(t, iterValue(d.UserKey, d.Version), v)
	}
	require.False(t, it.Valid())
	require.NoError(t, it.Error())
	return keys
}

// Each check runs on the memtable and again after a flush to an sstable (so
// that bloom filters and sstable iterators are exercised too).
func forMemtableAndSSTable(t *testing.T, check func(t *testing.T, db *pebbleadapter.DB, want [][]byte)) {
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprintf("flushed=%v", flush), func(t *testing.T) {
			db := openMem(t)
			want := fillIterStore(t, db)
			if flush {
				require.NoError(t, db.FlushMemtable())
				require.Positive(t, db.Metrics().Levels[0].TablesCount+db.Metrics().Levels[6].TablesCount)
			}
			check(t, db, want)
		})
	}
}

func TestIterTagBoundsYieldExactlyTheTag(t *testing.T) {
	forMemtableAndSSTable(t, func(t *testing.T, db *pebbleadapter.DB, want [][]byte) {
		lo, hi := keyenc.TagBounds(iterRun, keyenc.TagKV)
		it, err := db.NewIter(lo, hi)
		require.NoError(t, err)
		got := collect(t, it, it.First(), it.Next)
		require.NoError(t, it.Close())
		require.Equal(t, want, got, "user keys ascending, versions newest first, no decoys")
		for i := 1; i < len(got); i++ {
			require.Negative(t, keyenc.Compare(got[i-1], got[i]))
		}
	})
}

func TestIterNextPrefixSkipsOlderVersions(t *testing.T) {
	forMemtableAndSSTable(t, func(t *testing.T, db *pebbleadapter.DB, _ [][]byte) {
		lo, hi := keyenc.TagBounds(iterRun, keyenc.TagKV)
		it, err := db.NewIter(lo, hi)
		require.NoError(t, err)
		defer it.Close()
		got := collect(t, it, it.First(), it.NextPrefix)
		var want [][]byte
		for _, uk := range iterUsers { // iterUsers is in bytewise order
			want = append(want, keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, uk, slices.Max(iterVers)))
		}
		require.Equal(t, want, got, "one key per user key: its newest version")
	})
}

func TestIterSeekPrefixGEFindsNewestAtOrBelow(t *testing.T) {
	forMemtableAndSSTable(t, func(t *testing.T, db *pebbleadapter.DB, _ [][]byte) {
		cases := []struct {
			at   uint64
			want uint64 // 0: no version at or below at
		}{
			{0, 0}, {1, 1}, {2, 1}, {3, 3}, {6, 3}, {7, 7}, {100, 7}, {keyenc.MaxVersion, 7},
		}
		for _, uk := range iterUsers {
			for _, c := range cases {
				it, err := db.NewIter(nil, nil)
				require.NoError(t, err)
				ok := it.SeekPrefixGE(keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, uk, c.at))
				if c.want == 0 {
					// Never another user key, even one that starts with uk.
					require.False(t, ok, "%q@%d", uk, c.at)
				} else {
					require.True(t, ok, "%q@%d", uk, c.at)
					require.Equal(t, keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, uk, c.want), it.Key())
					// Next stays within the prefix: the older versions, then stop.
					n := 1
					for it.Next() {
						d, err := keyenc.DecodeDataKey(it.Key())
						require.NoError(t, err)
						require.Equal(t, uk, []byte(d.UserKey))
						require.Less(t, d.Version, c.want)
						n++
					}
					require.Equal(t, countAtOrBelow(iterVers, c.want), n)
				}
				require.NoError(t, it.Close())
			}
		}
		// An absent user key, including one between present keys.
		for _, uk := range [][]byte{[]byte("a\x00a"), []byte("zzz"), {0x00, 0x00}} {
			it, err := db.NewIter(nil, nil)
			require.NoError(t, err)
			require.False(t, it.SeekPrefixGE(keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, uk, keyenc.MaxVersion)))
			require.NoError(t, it.Close())
		}
	})
}

func countAtOrBelow(vs []uint64, at uint64) int {
	n := 0
	for _, v := range vs {
		if v <= at {
			n++
		}
	}
	return n
}

func TestIterPrefixBoundsAndSeekGE(t *testing.T) {
	forMemtableAndSSTable(t, func(t *testing.T, db *pebbleadapter.DB, want [][]byte) {
		userOf := func(k []byte) []byte {
			d, err := keyenc.DecodeDataKey(k)
			require.NoError(t, err)
			return d.UserKey
		}
		for _, prefix := range [][]byte{nil, {0x00}, []byte("a"), []byte("a\x00"), {0xFF}, {0xFF, 0xFF}, []byte("b")} {
			lo, hi := keyenc.PrefixBounds(iterRun, keyenc.TagKV, prefix)
			it, err := db.NewIter(lo, hi)
			require.NoError(t, err)
			got := collect(t, it, it.First(), it.Next)

			var exp [][]byte
			for _, k := range want {
				if bytes.HasPrefix(userOf(k), prefix) {
					exp = append(exp, k)
				}
			}
			require.Equal(t, exp, got, "prefix %q", prefix)

			// SeekGE to a mid key starts there; seeks below the lower bound
			// clamp to it.
			if len(exp) > 0 {
				mid := exp[len(exp)/2]
				require.Equal(t, exp[len(exp)/2:], collect(t, it, it.SeekGE(mid), it.Next))
				require.Equal(t, exp, collect(t, it, it.SeekGE(keyenc.AppendPrefix(nil, keyenc.RunID{}, keyenc.TagKV, nil)), it.Next))
			}
			require.NoError(t, it.Close())
		}
	})
}

func TestIterUnboundedSeesSystemAndDataKeys(t *testing.T) {
	db := openMem(t)
	fillIterStore(t, db)
	it, err := db.NewIter(nil, nil)
	require.NoError(t, err)
	defer it.Close()
	require.True(t, it.First())
	// System keys (space 0x01) sort before data keys (space 0x02).
	require.Equal(t, keyenc.SystemKey(keyenc.SysFormat), it.Key())
	n := 1
	for it.Next() {
		n++
	}
	require.NoError(t, it.Error())
	require.Equal(t, 1+3*len(iterUsers)*len(iterVers), n)
}

func TestIterEmptyRange(t *testing.T) {
	db := openMem(t)
	lo, hi := keyenc.TagBounds(iterRun, keyenc.TagKV)
	it, err := db.NewIter(lo, hi)
	require.NoError(t, err)
	require.False(t, it.First())
	require.False(t, it.Valid())
	require.False(t, it.SeekGE(lo))
	require.NoError(t, it.Error())
	require.NoError(t, it.Close())
}

// ---- Batches ----

func TestBatchApplyAndRead(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			db := openMem(t)
			b := db.NewBatch()
			k1 := keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, []byte("set"), 1)
			b.Set(k1, []byte("v1"))
			k2 := keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, []byte("deferred"), 1)
			d := b.SetDeferred(len(k2), 2)
			copy(d.Key, k2)
			copy(d.Value, "v2")
			d.Finish()
			require.Positive(t, b.Len())

			require.NoError(t, b.Apply(sync))
			// Readable as soon as Apply returns, before the fsync wait.
			for k, v := range map[string]string{string(k1): "v1", string(k2): "v2"} {
				got, err := db.Get([]byte(k))
				require.NoError(t, err)
				require.Equal(t, v, string(got))
			}
			require.NoError(t, b.SyncWait())
			require.NoError(t, b.SyncWait(), "a second wait is a no-op")
			b.Close()
			require.NoError(t, db.SyncBarrier())
		})
	}
}

// Close waits for a sync batch's fsync itself when SyncWait was skipped.
func TestBatchCloseWithoutSyncWait(t *testing.T) {
	db := openMem(t)
	b := db.NewBatch()
	b.Set(keyenc.AppendVersioned(nil, iterRun, keyenc.TagKV, []byte("k"), 1), []byte("v"))
	require.NoError(t, b.Apply(true))
	b.Close()
	require.NoError(t, db.Err())
}

func TestFlushMemtableKeepsData(t *testing.T) {
	db := openMem(t)
	want := fillIterStore(t, db)
	require.NoError(t, db.FlushMemtable())
	for _, k := range want {
		v, err := db.Get(k)
		require.NoError(t, err)
		d, _ := keyenc.DecodeDataKey(k)
		require.Equal(t, iterValue(d.UserKey, d.Version), v)
	}
}

// sstables lists the sstables in dir, oldest (lowest file number) first.
func sstables(t *testing.T, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.List(dir)
	require.NoError(t, err)
	var ssts []string
	for _, name := range names {
		if strings.HasSuffix(name, ".sst") {
			ssts = append(ssts, name)
		}
	}
	slices.Sort(ssts) // zero-padded file numbers
	return ssts
}

// openWithDataSSTable returns a closed store on fs whose format record and
// test data (fillIterStore) sit in two separate sstables, and the name of
// the data one. Damage to the data table then leaves Open's format check
// alone, and a reopened store has not cached any of its blocks.
func openWithDataSSTable(t *testing.T, fs vfs.FS) (dataSST string, want [][]byte) {
	t.Helper()
	db := openAt(t, fs)
	require.NoError(t, db.FlushMemtable()) // the format record
	require.Len(t, sstables(t, fs), 1)
	want = fillIterStore(t, db)
	require.NoError(t, db.FlushMemtable())
	ssts := sstables(t, fs)
	require.Len(t, ssts, 2)
	require.NoError(t, db.Close())
	return ssts[1], want
}

// corruptFile flips one byte in the first block of the named file.
func corruptFile(t *testing.T, fs vfs.FS, name string) {
	t.Helper()
	f, err := fs.OpenReadWrite(fs.PathJoin(dir, name), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	var b [1]byte
	_, err = f.ReadAt(b[:], 20)
	require.NoError(t, err)
	b[0] ^= 0xFF
	_, err = f.WriteAt(b[:], 20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// A damaged block holding the format record fails Open with ErrCorruption
// (and releases the directory).
func TestOpenCorruptFormatBlockIsCorruption(t *testing.T) {
	fs := vfs.NewMem()
	openWithDataSSTable(t, fs)
	corruptFile(t, fs, sstables(t, fs)[0])
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.ErrorIs(t, err, serr.ErrCorruption)
	require.Nil(t, db)
	pdb := rawPebble(t, fs, pebbleadapter.Comparer) // not locked
	require.NoError(t, pdb.Close())
}

// A checksum mismatch found while iterating is reported by Error and Close
// as ErrCorruption, and so is a Get of a key in the damaged block.
func TestIterCorruptionMapsToErrCorruption(t *testing.T) {
	fs := vfs.NewMem()
	sst, want := openWithDataSSTable(t, fs)
	corruptFile(t, fs, sst)

	db := openAt(t, fs) // sstable contents are read lazily: opening succeeds
	defer db.Close()
	lo, hi := keyenc.TagBounds(iterRun, keyenc.TagKV)
	it, err := db.NewIter(lo, hi)
	require.NoError(t, err)
	for ok := it.First(); ok; ok = it.Next() {
	}
	require.ErrorIs(t, it.Error(), serr.ErrCorruption)
	require.ErrorIs(t, it.Close(), serr.ErrCorruption)

	_, err = db.Get(want[0])
	require.ErrorIs(t, err, serr.ErrCorruption)
}

// A plain read error (not a checksum mismatch) is not passed off as
// corruption, nor as not-found: it is a storage error carrying its cause.
func TestIterReadErrorIsStorageError(t *testing.T) {
	var armed atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsRead && strings.HasSuffix(op.Path, ".sst") {
			return errorfs.ErrInjected
		}
		return nil
	})
	fs := errorfs.Wrap(vfs.NewMem(), inj)
	_, want := openWithDataSSTable(t, fs)
	db := openAt(t, fs) // a cold block cache
	defer db.Close()

	armed.Store(true)
	lo, hi := keyenc.TagBounds(iterRun, keyenc.TagKV)
	it, err := db.NewIter(lo, hi)
	if err == nil {
		require.False(t, it.First())
		err = it.Error()
		require.Error(t, err)
		require.Error(t, it.Close())
	}
	require.ErrorIs(t, err, errorfs.ErrInjected)
	require.NotErrorIs(t, err, serr.ErrCorruption)
	require.NotErrorIs(t, err, serr.ErrNotFound)

	_, err = db.Get(want[0])
	require.ErrorIs(t, err, errorfs.ErrInjected)
	require.NotErrorIs(t, err, serr.ErrNotFound)
	armed.Store(false)
}

// A cached point-read iterator is closed soon after it expires even if no
// read comes to take it: an idle database must not keep the files (and
// memtables) it was created over open.
func TestIdleCachedPointIteratorIsClosed(t *testing.T) {
	db := openMem(t)
	run := keyenc.RunID{1}
	k := keyenc.AppendVersioned(nil, run, keyenc.TagKV, []byte("k"), 1)
	b := db.NewBatch()
	b.Set(k, []byte("v"))
	require.NoError(t, b.Apply(false))
	b.Close()
	require.NoError(t, db.FlushMemtable())

	it, err := db.AcquirePointIter(1, func() uint64 { return 1 })
	require.NoError(t, err)
	require.True(t, it.SeekPrefixGE(k))
	require.NoError(t, db.ReleasePointIter(it))
	require.Positive(t, db.Metrics().TableIters, "the cached iterator holds the table open")
	require.Eventually(t, func() bool { return db.Metrics().TableIters == 0 },
		10*time.Second, 10*time.Millisecond, "the idle iterator is closed without another read")
}
