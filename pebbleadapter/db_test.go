package pebbleadapter_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/internal/testutil"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

const dir = "db"

func openAt(t *testing.T, fs vfs.FS) *pebbleadapter.DB {
	t.Helper()
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.NoError(t, err)
	return db
}

// openMem opens a fresh store on its own MemFS and closes it at the end of
// the test.
func openMem(t *testing.T) *pebbleadapter.DB {
	t.Helper()
	db := openAt(t, vfs.NewMem())
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// quietLogger keeps raw Pebble's log lines out of the test output.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// rawPebble opens dir on fs with raw Pebble and the given comparer.
func rawPebble(t *testing.T, fs vfs.FS, cmp *pebble.Comparer) *pebble.DB {
	t.Helper()
	pdb, err := pebble.Open(dir, &pebble.Options{FS: fs, Comparer: cmp, FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}})
	require.NoError(t, err)
	return pdb
}

func TestOpenCreatesFormatRecord(t *testing.T) {
	db := openMem(t)
	require.True(t, db.Accepting())
	require.NoError(t, db.Err())
	require.NoError(t, db.Failed())
	v, err := db.Get(keyenc.SystemKey(keyenc.SysFormat))
	require.NoError(t, err)
	require.Equal(t, keyenc.EncodeFormat(), v)
	require.NotNil(t, db.Metrics())
}

func TestGetMissingKeyIsErrNotFound(t *testing.T) {
	db := openMem(t)
	_, err := db.Get(keyenc.SystemKey("no-such-record"))
	require.ErrorIs(t, err, serr.ErrNotFound)
}

// putSynced writes the value "v" under one KV key, synced, and returns the
// key.
func putSynced(t *testing.T, db *pebbleadapter.DB) []byte {
	t.Helper()
	key := keyenc.AppendVersioned(nil, keyenc.RunID{1}, keyenc.TagKV, []byte("k"), 1)
	b := db.NewBatch()
	defer b.Close()
	b.Set(key, []byte("v"))
	require.NoError(t, b.Apply(true))
	require.NoError(t, b.SyncWait())
	return key
}

func TestReopenAfterCloseKeepsData(t *testing.T) {
	fs := vfs.NewMem()
	db := openAt(t, fs)
	key := putSynced(t, db)
	require.NoError(t, db.Close())

	db = openAt(t, fs)
	defer db.Close()
	got, err := db.Get(key)
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got)
	// The format record written by the first open is checked, not rewritten.
	f, err := db.Get(keyenc.SystemKey(keyenc.SysFormat))
	require.NoError(t, err)
	require.Equal(t, keyenc.EncodeFormat(), f)
}

func TestOpenForeignPebbleStoreIsCorruption(t *testing.T) {
	fs := vfs.NewMem()
	pdb, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: quietLogger{}}) // default bytewise comparer
	require.NoError(t, err)
	require.NoError(t, pdb.Set([]byte("hello"), []byte("world"), pebble.Sync))
	require.NoError(t, pdb.Close())

	require.NotPanics(t, func() {
		db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
		require.ErrorIs(t, err, serr.ErrCorruption)
		require.Nil(t, db)
	})

	// The failed open left the store untouched and unlocked.
	pdb, err = pebble.Open(dir, &pebble.Options{FS: fs, Logger: quietLogger{}})
	require.NoError(t, err)
	v, closer, err := pdb.Get([]byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "world", string(v))
	require.NoError(t, closer.Close())
	require.NoError(t, pdb.Close())
}

func TestOpenTwiceIsLocked(t *testing.T) {
	fs := vfs.NewMem()
	db := openAt(t, fs)

	second, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.ErrorIs(t, err, serr.ErrLocked)
	require.Nil(t, second)
	// The refused open did not disturb the open store.
	require.True(t, db.Accepting())
	_, err = db.Get(keyenc.SystemKey(keyenc.SysFormat))
	require.NoError(t, err)

	require.NoError(t, db.Close())
	db = openAt(t, fs) // the lock is released by Close
	require.NoError(t, db.Close())
}

// The claim on an open directory is the directory itself, not its name:
// renamed while open, it cannot be opened a second time in the process by
// its new name (two Pebble instances on one store lose acknowledged
// commits: the second deletes the first's WAL). A bind mount or a
// hard-linked parent reach the same case; a rename needs no privileges.
func TestOpenOfARenamedOpenDirectoryIsLocked(t *testing.T) {
	base := t.TempDir()
	a, b := base+"/a", base+"/b"
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: a})
	require.NoError(t, err)
	require.NoError(t, os.Rename(a, b))
	second, err := pebbleadapter.Open(pebbleadapter.Options{Dir: b})
	require.ErrorIs(t, err, serr.ErrLocked)
	require.Nil(t, second)
	_, err = pebbleadapter.LockDirectory(b, nil)
	require.ErrorIs(t, err, serr.ErrLocked)
	require.NoError(t, os.Rename(b, a)) // Pebble names its files by the path it opened
	require.NoError(t, db.Close())
	require.NoError(t, os.Rename(a, b))
	db, err = pebbleadapter.Open(pebbleadapter.Options{Dir: b})
	require.NoError(t, err, "Close released the claim")
	require.NoError(t, db.Close())
}

// Open takes the directory's lock before it reads anything there: another
// process's Open or Close changes the files (it replaces the OPTIONS file,
// removes WALs) until it lets go of the lock, and an Open that read them
// first failed with the error of a file vanishing under it instead of
// ErrLocked (a black-box audit saw it once in about 1,000 racing opens).
// So only the lock file is looked at (its size: see lockDir) before the
// lock is taken, for a new store and an existing one.
func TestOpenLocksBeforeReading(t *testing.T) {
	mem := vfs.NewMem()
	for _, existing := range []bool{false, true} {
		var (
			mu  sync.Mutex
			ops []errorfs.Op
		)
		inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
			mu.Lock()
			defer mu.Unlock()
			if op.Kind != errorfs.OpMkdirAll {
				ops = append(ops, op)
			}
			return nil
		})
		db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: errorfs.Wrap(mem, inj)})
		require.NoError(t, err)
		require.NoError(t, db.Close())
		mu.Lock()
		seen := slices.Clone(ops)
		mu.Unlock()
		lock := slices.IndexFunc(seen, func(op errorfs.Op) bool { return op.Kind == errorfs.OpLock })
		require.NotEqual(t, -1, lock)
		for _, op := range seen[:lock] {
			require.Equal(t, pebbleadapter.LockFileName, mem.PathBase(op.Path), "existing store: %v: %v %s before the lock", existing, op.Kind, op.Path)
		}
	}
}

// Pebble's lock file is empty, and locking it creates or empties it: a
// LOCK file with contents, or a directory of that name, is someone else's,
// and Open leaves it alone (as it leaves what a symbolic link named LOCK
// points to) and fails with ErrCorruption.
func TestOpenLeavesAForeignLockFileAlone(t *testing.T) {
	base := t.TempDir()
	outside := base + "/outside"
	require.NoError(t, os.WriteFile(outside, []byte("user data"), 0o644))
	for _, setup := range []func(lock string) error{
		func(lock string) error { return os.WriteFile(lock, []byte("user data"), 0o644) },
		func(lock string) error { return os.Symlink(outside, lock) },
		func(lock string) error { return os.Symlink(base+"/missing", lock) }, // dangling
		func(lock string) error { return os.Mkdir(lock, 0o755) },
	} {
		d, err := os.MkdirTemp(base, "db")
		require.NoError(t, err)
		require.NoError(t, setup(d+"/"+pebbleadapter.LockFileName))
		_, err = pebbleadapter.Open(pebbleadapter.Options{Dir: d})
		require.ErrorIs(t, err, serr.ErrCorruption)
		_, err = pebbleadapter.LockDirectory(d, nil)
		require.ErrorIs(t, err, serr.ErrCorruption)
		names, err := os.ReadDir(d)
		require.NoError(t, err)
		require.Len(t, names, 1, "nothing created")
		got, err := os.ReadFile(outside)
		require.NoError(t, err)
		require.Equal(t, "user data", string(got))
		require.NoFileExists(t, base+"/missing", "nothing created through a dangling link")
	}
	// An empty LOCK file is Pebble's (a store left by a crash before its
	// creation got further has one).
	d := base + "/empty"
	require.NoError(t, os.Mkdir(d, 0o755))
	require.NoError(t, os.WriteFile(d+"/"+pebbleadapter.LockFileName, nil, 0o644))
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: d})
	require.NoError(t, err)
	require.NoError(t, db.Close())
}

// CheckComparer tells Strata's stores from other Pebble stores without
// opening them; LockDirectory keeps stores from opening a directory.
func TestCheckComparerAndLockDirectory(t *testing.T) {
	fs := vfs.NewMem()
	require.ErrorIs(t, pebbleadapter.CheckComparer(dir, fs), os.ErrNotExist, "no directory")
	require.NoError(t, fs.MkdirAll(dir, 0o755))
	require.ErrorIs(t, pebbleadapter.CheckComparer(dir, fs), serr.ErrCorruption, "no store")
	db := openAt(t, fs)
	require.NoError(t, pebbleadapter.CheckComparer(dir, fs), "an open store can be checked")
	_, err := pebbleadapter.LockDirectory(dir, fs)
	require.ErrorIs(t, err, serr.ErrLocked, "while a store holds it")
	require.NoError(t, db.Close())
	require.NoError(t, pebbleadapter.CheckComparer(dir, fs))

	lock, err := pebbleadapter.LockDirectory(dir, fs)
	require.NoError(t, err)
	_, err = pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.ErrorIs(t, err, serr.ErrLocked, "while the lock is held")
	_, err = pebbleadapter.Open(pebbleadapter.Options{Dir: "/" + dir + "/.", FS: fs})
	require.ErrorIs(t, err, serr.ErrLocked, "while the lock is held, by another spelling")
	require.NoError(t, lock.Close())
	openAt(t, fs).Close()

	// The claim on a directory goes with the store or the lock that held
	// it, also when Open fails.
	db = openAt(t, fs)
	_, err = pebbleadapter.LockDirectory("/"+dir, errorfs.Wrap(fs, errorfs.InjectorFunc(func(errorfs.Op) error { return nil })))
	require.ErrorIs(t, err, serr.ErrLocked, "through a wrapper, by another spelling")
	require.NoError(t, db.Close())
	other := vfs.NewMem()
	require.NoError(t, other.MkdirAll(dir, 0o755))
	f, err := other.Create(other.PathJoin(dir, "CURRENT"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	for range 2 {
		_, err = pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: other})
		require.ErrorIs(t, err, serr.ErrCorruption, "a failed Open leaves no claim behind")
	}
	openAt(t, fs).Close()

	foreign := vfs.NewMem()
	pdb, err := pebble.Open(dir, &pebble.Options{FS: foreign, Logger: quietLogger{}}) // default comparer
	require.NoError(t, err)
	require.NoError(t, pdb.Close())
	require.ErrorIs(t, pebbleadapter.CheckComparer(dir, foreign), serr.ErrCorruption)
}

func TestOpenChecksFormatRecord(t *testing.T) {
	future := binary.BigEndian.AppendUint32([]byte("STRA"), keyenc.FormatVersion+1)
	cases := []struct {
		name   string
		record []byte
	}{
		{"empty", []byte{}},
		{"garbage", []byte("not a format record")},
		{"wrong magic", binary.BigEndian.AppendUint32([]byte("PEBB"), keyenc.FormatVersion)},
		{"truncated", keyenc.EncodeFormat()[:7]},
		{"newer format", future},
		{"format zero", binary.BigEndian.AppendUint32([]byte("STRA"), 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := vfs.NewMem()
			require.NoError(t, openAt(t, fs).Close())

			pdb := rawPebble(t, fs, pebbleadapter.Comparer)
			require.NoError(t, pdb.Set(keyenc.SystemKey(keyenc.SysFormat), c.record, pebble.Sync))
			require.NoError(t, pdb.Close())

			db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
			require.ErrorIs(t, err, serr.ErrCorruption)
			require.Nil(t, db)

			// The failed open released the directory: repair the record and
			// the store opens again.
			pdb = rawPebble(t, fs, pebbleadapter.Comparer)
			require.NoError(t, pdb.Set(keyenc.SystemKey(keyenc.SysFormat), keyenc.EncodeFormat(), pebble.Sync))
			require.NoError(t, pdb.Close())
			require.NoError(t, openAt(t, fs).Close())
		})
	}
}

// A store with Strata's comparer that holds keys but no format record is
// not taken for a new store.
func TestOpenRefusesDataWithoutFormatRecord(t *testing.T) {
	fs := vfs.NewMem()
	require.NoError(t, openAt(t, fs).Close())
	pdb := rawPebble(t, fs, pebbleadapter.Comparer)
	require.NoError(t, pdb.Set(keyenc.SystemKey(keyenc.SysLastVersion), []byte{0, 0, 0, 0, 0, 0, 0, 9}, pebble.Sync))
	require.NoError(t, pdb.Delete(keyenc.SystemKey(keyenc.SysFormat), pebble.Sync))
	require.NoError(t, pdb.Close())
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.ErrorIs(t, err, serr.ErrCorruption)
	require.Nil(t, db)
}

func TestOpenCreatesDirectory(t *testing.T) {
	fs := vfs.NewMem()
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: "a/b/c", FS: fs, MemTableSize: 1 << 20, CacheSize: 1 << 20})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = fs.Stat("a/b/c")
	require.NoError(t, err)
}

// ---- Gate ----

func TestGateEnterLeaveCounts(t *testing.T) {
	db := openMem(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	require.NoError(t, db.WaitIdle(cancelled), "no operation in flight: idle at once")

	const n = 3
	for range n {
		require.NoError(t, db.Enter())
	}
	for i := range n {
		err := db.WaitIdle(cancelled)
		require.ErrorIs(t, err, context.Canceled, "%d of %d operations still inside", n-i, n)
		db.Leave()
	}
	require.NoError(t, db.WaitIdle(cancelled), "every Enter was matched by a Leave")
}

func TestGateStopAccepting(t *testing.T) {
	db := openMem(t)
	require.NoError(t, db.Enter()) // admitted before the stop

	db.StopAccepting()
	require.ErrorIs(t, db.Enter(), serr.ErrClosed)
	require.ErrorIs(t, db.Err(), serr.ErrClosed)
	require.False(t, db.Accepting())
	require.NoError(t, db.Failed(), "closing is not a failure")

	// The operation admitted before the stop still runs against Pebble.
	_, err := db.Get(keyenc.SystemKey(keyenc.SysFormat))
	require.NoError(t, err)

	// A refused Enter does not count as in flight: one Leave makes it idle.
	db.Leave()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, db.WaitIdle(cancelled))
}

func TestGateWaitIdleWaitsForLeave(t *testing.T) {
	db := openMem(t)
	require.NoError(t, db.Enter())

	done := make(chan error, 1)
	go func() { done <- db.WaitIdle(context.Background()) }()
	require.True(t, testutil.StillBlocked(done), "WaitIdle returned while an operation was inside")

	db.Leave()
	require.NoError(t, testutil.WaitFor(t, done))
}

func TestGateWaitIdleRespectsContext(t *testing.T) {
	db := openMem(t)
	require.NoError(t, db.Enter())
	defer db.Leave()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- db.WaitIdle(ctx) }()
	require.True(t, testutil.StillBlocked(done))

	cancel()
	err := testutil.WaitFor(t, done)
	require.Equal(t, context.Canceled, err) // as it is, not wrapped
}

func TestCloseWaitsForInflightOperation(t *testing.T) {
	db := openAt(t, vfs.NewMem())
	require.NoError(t, db.Enter())

	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()

	// Close stops admission at once...
	require.Eventually(t, func() bool {
		err := db.Enter()
		if err == nil {
			db.Leave() // admitted before Close began: balance it
			return false
		}
		return errors.Is(err, serr.ErrClosed)
	}, 10*time.Second, time.Millisecond)
	// ...but waits for the admitted operation, which can still use Pebble.
	require.True(t, testutil.StillBlocked(closed), "Close returned while an operation was inside")
	_, err := db.Get(keyenc.SystemKey(keyenc.SysFormat))
	require.NoError(t, err)

	db.Leave()
	require.NoError(t, testutil.WaitFor(t, closed))
	require.ErrorIs(t, db.Err(), serr.ErrClosed)
	require.ErrorIs(t, db.Enter(), serr.ErrClosed)
}

func TestCloseIsIdempotent(t *testing.T) {
	db := openAt(t, vfs.NewMem())
	require.NoError(t, db.Close())
	require.NoError(t, db.Close())

	// Concurrent Close calls all return the first call's result.
	db = openAt(t, vfs.NewMem())
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = db.Close() })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// Operations racing with Close either are refused with ErrClosed or run to
// completion on an open Pebble (which would panic if used after Close).
func TestGateNeverAdmitsAfterClose(t *testing.T) {
	db := openAt(t, vfs.NewMem())
	key := keyenc.SystemKey(keyenc.SysFormat)
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			<-start
			for {
				if err := db.Enter(); err != nil {
					require.ErrorIs(t, err, serr.ErrClosed)
					refused.Add(1)
					return
				}
				_, err := db.Get(key)
				db.Leave()
				if err != nil {
					t.Errorf("admitted Get failed: %v", err)
					return
				}
				admitted.Add(1)
			}
		})
	}
	close(start)
	for admitted.Load() < 100 {
		time.Sleep(100 * time.Microsecond)
	}
	require.NoError(t, db.Close())
	wg.Wait()
	require.Equal(t, int64(8), refused.Load())
}

func TestFailMakesEveryEnterFail(t *testing.T) {
	db := openMem(t)
	cause := errors.New("disk on fire")
	db.Fail(cause)

	for _, err := range []error{db.Enter(), db.Err(), db.Failed()} {
		require.ErrorIs(t, err, serr.ErrFailed)
		require.ErrorIs(t, err, cause)
	}
	require.False(t, db.Accepting())

	// The first cause wins.
	other := errors.New("second failure")
	db.Fail(other)
	require.ErrorIs(t, db.Enter(), cause)
	require.NotErrorIs(t, db.Enter(), other)

	// A failure outranks closing: after Close, Err still reports it.
	require.NotPanics(t, func() { _ = db.Close() })
	require.ErrorIs(t, db.Err(), serr.ErrFailed)
	require.ErrorIs(t, db.Enter(), cause)
}

// A failure recorded while a sync batch is pending is what SyncWait and
// Apply report, even though Pebble itself succeeded: a failed store
// acknowledges nothing.
func TestBatchReportsRecordedFailure(t *testing.T) {
	db := openMem(t)
	key := keyenc.AppendVersioned(nil, keyenc.RunID{1}, keyenc.TagKV, []byte("k"), 1)

	b := db.NewBatch()
	b.Set(key, []byte("v"))
	require.NoError(t, b.Apply(true))
	db.Fail(errors.New("boom"))
	require.ErrorIs(t, b.SyncWait(), serr.ErrFailed)
	b.Close()

	b = db.NewBatch()
	b.Set(key, []byte("v2"))
	require.ErrorIs(t, b.Apply(false), serr.ErrFailed)
	require.ErrorIs(t, b.SyncWait(), serr.ErrFailed)
	b.Close()
	require.ErrorIs(t, db.SyncBarrier(), serr.ErrFailed)
}

// Exists tells a store from a missing, empty or foreign directory without
// writing anything.
func TestExists(t *testing.T) {
	fs := vfs.NewMem()
	ok, err := pebbleadapter.Exists(dir, fs)
	require.NoError(t, err)
	require.False(t, ok, "missing")
	require.NoError(t, fs.MkdirAll(dir, 0o755))
	f, err := fs.Create(fs.PathJoin(dir, "notes.txt"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	ok, err = pebbleadapter.Exists(dir, fs)
	require.NoError(t, err)
	require.False(t, ok, "a directory of other files")
	require.NoError(t, openAt(t, fs).Close())
	before, err := fs.List(dir)
	require.NoError(t, err)
	ok, err = pebbleadapter.Exists(dir, fs)
	require.NoError(t, err)
	require.True(t, ok)
	after, err := fs.List(dir)
	require.NoError(t, err)
	require.ElementsMatch(t, before, after, "nothing written")
}

// A store whose manifest marker is lost or its name damaged looks new to
// Pebble, which would create a store and delete the tables and WALs the new
// MANIFEST does not name. Open and Exists refuse such a directory instead
// and leave every file as it was.
func TestOpenRefusesDataWithoutManifestMarker(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(fs vfs.FS, marker string) error
	}{
		{"removed", func(fs vfs.FS, marker string) error { return fs.Remove(fs.PathJoin(dir, marker)) }},
		{"renamed", func(fs vfs.FS, marker string) error {
			// One flipped byte in the name: "marker.manifest." becomes "marker.manifesu.".
			return fs.Rename(fs.PathJoin(dir, marker), fs.PathJoin(dir, "marker.manifesu."+marker[len("marker.manifest."):]))
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			fs := vfs.NewMem()
			db := openAt(t, fs)
			key := putSynced(t, db)
			require.NoError(t, db.FlushMemtable())
			require.NoError(t, db.Close())

			names, err := fs.List(dir)
			require.NoError(t, err)
			marker := ""
			for _, n := range names {
				if len(n) > len("marker.manifest.") && n[:len("marker.manifest.")] == "marker.manifest." {
					marker = n
				}
			}
			require.NotEmpty(t, marker, "files: %v", names)
			require.NoError(t, damage.do(fs, marker))
			require.ErrorContains(t, requireRefusedUntouched(t, fs), "no manifest marker")
			after, err := fs.List(dir)
			require.NoError(t, err)

			// Put the marker back by hand, and the data is all there.
			for _, n := range after {
				if n != marker && len(n) > len("marker.manifes") && n[:len("marker.manifes")] == "marker.manifes" {
					require.NoError(t, fs.Remove(fs.PathJoin(dir, n)))
				}
			}
			f, err := fs.Create(fs.PathJoin(dir, marker), vfs.WriteCategoryUnspecified)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			db = openAt(t, fs)
			defer db.Close()
			got, err := db.Get(key)
			require.NoError(t, err)
			require.Equal(t, []byte("v"), got)
		})
	}
}

// requireRefusedUntouched checks that Open and Exists refuse the store in
// dir on fs as ErrCorruption, and that nothing there was deleted or
// written. It returns Open's error.
func requireRefusedUntouched(t *testing.T, fs vfs.FS) error {
	t.Helper()
	before, err := fs.List(dir)
	require.NoError(t, err)
	_, openErr := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.ErrorIs(t, openErr, serr.ErrCorruption)
	_, err = pebbleadapter.Exists(dir, fs)
	require.ErrorIs(t, err, serr.ErrCorruption)
	after, err := fs.List(dir)
	require.NoError(t, err)
	require.ElementsMatch(t, before, after, "nothing deleted or written")
	return openErr
}

// A CURRENT file is the manifest pointer of LevelDB, RocksDB and Pebble
// stores older than markers: with or without the MANIFEST it names, a
// directory holding one is a store of another format, refused before
// anything is written there (Pebble itself would refuse it with an untyped
// error, after creating its lock file).
func TestOpenRefusesAStoreWithACurrentFile(t *testing.T) {
	for name, files := range map[string][]string{
		"CURRENT alone":          {"CURRENT"},
		"CURRENT and a MANIFEST": {"CURRENT", "MANIFEST-000002"},
		"a LevelDB-like layout":  {"CURRENT", "MANIFEST-000002", "LOG", "000003.ldb"},
	} {
		t.Run(name, func(t *testing.T) {
			fs := vfs.NewMem()
			require.NoError(t, fs.MkdirAll(dir, 0o755))
			for _, n := range files {
				f, err := fs.Create(fs.PathJoin(dir, n), vfs.WriteCategoryUnspecified)
				require.NoError(t, err)
				_, err = f.Write([]byte("MANIFEST-000002\n"))
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}
			requireRefusedUntouched(t, fs)
		})
	}
}

// A crash while Pebble creates a store can leave its first MANIFEST without
// a marker, and nothing else: that directory is still taken for an empty
// one, and opening it creates the store.
func TestOpenAfterCrashDuringCreation(t *testing.T) {
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll(dir, 0o755))
	f, err := fs.Create(fs.PathJoin(dir, "MANIFEST-000001"), vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	ok, err := pebbleadapter.Exists(dir, fs)
	require.NoError(t, err)
	require.False(t, ok)
	db := openAt(t, fs)
	require.NoError(t, db.Close())
	ok, err = pebbleadapter.Exists(dir, fs)
	require.NoError(t, err)
	require.True(t, ok)
}

// Damaged names of Pebble's marker files (the format version marker, or a
// marker whose iteration or value no longer parses) are ErrCorruption from
// Open and Exists, and nothing in the directory is touched.
func TestOpenRefusesDamagedMarkerNames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string                // the marker damaged
		damage func(n string) string // its new name, "" to remove it
	}{
		{"format marker removed", "marker.format-version.", func(string) string { return "" }},
		{"format marker iteration", "marker.format-version.", func(n string) string { return replaceAt(n, len("marker.format-version.")+2, 'u') }},
		{"format marker value", "marker.format-version.", func(n string) string { return replaceAt(n, len(n)-2, 'Z') }},
		{"manifest marker iteration", "marker.manifest.", func(n string) string { return replaceAt(n, len("marker.manifest.")+2, 'u') }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			db := openAt(t, fs)
			putSynced(t, db)
			require.NoError(t, db.Close())
			names, err := fs.List(dir)
			require.NoError(t, err)
			damaged := false
			for _, n := range names {
				if !strings.HasPrefix(n, tc.prefix) {
					continue
				}
				if to := tc.damage(n); to == "" {
					require.NoError(t, fs.Remove(fs.PathJoin(dir, n)))
				} else {
					require.NoError(t, fs.Rename(fs.PathJoin(dir, n), fs.PathJoin(dir, to)))
				}
				damaged = true
			}
			require.True(t, damaged, "files: %v", names)
			requireRefusedUntouched(t, fs)
		})
	}
}

func replaceAt(s string, i int, c byte) string {
	b := []byte(s)
	b[i] = c
	return string(b)
}

// A damaged OPTIONS file, here one flipped byte in the merger's name (a
// case the bit-rot audit met), is ErrCorruption, not Pebble's untyped
// mismatch error.
func TestOpenRefusesDamagedOptionsFile(t *testing.T) {
	fs := vfs.NewMem()
	require.NoError(t, openAt(t, fs).Close())
	names, err := fs.List(dir)
	require.NoError(t, err)
	for _, n := range names {
		if !strings.HasPrefix(n, "OPTIONS-") {
			continue
		}
		path := fs.PathJoin(dir, n)
		f, err := fs.Open(path)
		require.NoError(t, err)
		b, err := io.ReadAll(f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		i := bytes.Index(b, []byte("merger="))
		require.Positive(t, i)
		testutil.FlipByte(t, fs, path, int64(i+len("merger=")))
	}
	_, err = pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.ErrorIs(t, err, serr.ErrCorruption)
	require.ErrorContains(t, err, "does not match a Strata store's settings")
}

// A store that has lost its format version marker along with every file
// Open takes for the sign of a finished store (its OPTIONS file and its
// tables) looks like a creation cut short, which Open lets Pebble retry;
// Pebble finds the store holds data (its MANIFEST names tables, its WAL
// holds commits) and refuses it, which Open returns as ErrCorruption,
// deleting nothing.
func TestOpenRefusesDataWithoutFormatMarkerOrOptions(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db := openAt(t, mem)
	putSynced(t, db)
	fs := mem.CrashClone(vfs.CrashCloneCfg{}) // the commit is only in the WAL
	require.NoError(t, db.Close())
	names, err := fs.List(dir)
	require.NoError(t, err)
	for _, n := range names {
		if strings.HasPrefix(n, "marker.format-version.") || strings.HasPrefix(n, "OPTIONS-") || strings.HasSuffix(n, ".sst") {
			require.NoError(t, fs.Remove(fs.PathJoin(dir, n)))
		}
	}
	_, err = pebbleadapter.Exists(dir, fs)
	require.NoError(t, err, "no sign of a finished store")
	before, err := fs.List(dir)
	require.NoError(t, err)
	_, err = pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: fs})
	require.ErrorIs(t, err, serr.ErrCorruption)
	after, err := fs.List(dir)
	require.NoError(t, err)
	require.Subset(t, after, before, "nothing deleted")
}
