package strata_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/internal/testutil"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// walSyncFault fails every WAL fsync with EIO while armed.
type walSyncFault struct{ armed atomic.Bool }

func (f *walSyncFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return fmt.Errorf("injected: %w", errorfs.ErrInjected)
	}
	return nil
}

func (f *walSyncFault) String() string { return "wal-sync-eio" }

// checkFailedEverywhere asserts that every call on a failed database returns
// ErrFailed promptly.
func checkFailedEverywhere(t *testing.T, db *strata.Database, run strata.RunID) {
	t.Helper()
	require.False(t, db.IsOpen())
	require.ErrorIs(t, db.Err(), strata.ErrFailed)
	_, err := db.Put(ctx, run, []byte("after"), value.Int(1))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.Get(ctx, run, []byte("before"))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.Delete(ctx, run, []byte("before"))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.CAS(ctx, run, []byte("before"), 0, value.Int(1))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = db.Flush(ctx)
	require.ErrorIs(t, err, strata.ErrFailed)
	require.ErrorIs(t, db.Shutdown(ctx), strata.ErrFailed)
	require.ErrorIs(t, db.Close(), strata.ErrFailed)
	require.ErrorIs(t, db.Close(), strata.ErrFailed, "Close is idempotent")
	require.ErrorIs(t, db.Shutdown(ctx), strata.ErrFailed, "after Close too")
}

func TestWALSyncFailureFailsCommitAndDatabase(t *testing.T) {
	mem := vfs.NewMem()
	fault := &walSyncFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	run := strata.NewRunID()
	before, err := db.Put(ctx, run, []byte("before"), value.Int(1))
	require.NoError(t, err)
	// Transactions begun before the failure fail with the database too,
	// read-only ones included.
	readOnly, err := db.Begin(ctx, run)
	require.NoError(t, err)
	writer, err := db.Begin(ctx, run)
	require.NoError(t, err)
	require.NoError(t, writer.Put([]byte("pending"), value.Int(3)))

	fault.armed.Store(true)
	v, err := db.Put(ctx, run, []byte("doomed"), value.Int(2))
	require.ErrorIs(t, err, strata.ErrFailed, "a failed fsync is never reported as success")
	require.Zero(t, v)
	require.Equal(t, before, db.CurrentVersion(), "the failed commit never became visible")
	_, err = readOnly.Get([]byte("before"))
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = readOnly.List(nil)
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = readOnly.EventLen()
	require.ErrorIs(t, err, strata.ErrFailed)
	_, err = readOnly.Commit()
	require.ErrorIs(t, err, strata.ErrFailed, "not even a read-only commit reports success")
	require.ErrorIs(t, writer.Put([]byte("more"), value.Int(4)), strata.ErrFailed)
	_, err = writer.Commit()
	require.ErrorIs(t, err, strata.ErrFailed)
	checkFailedEverywhere(t, db, run)

	// Reopen without the fault: everything acknowledged is there; the
	// failed commit's outcome is unknown (present or absent), as with any
	// fsync failure.
	fault.armed.Store(false)
	db, err = strata.OpenWith(strata.Options{Path: "db", FS: mem, Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	defer db.Close()
	got, err := db.Get(ctx, run, []byte("before"))
	require.NoError(t, err)
	require.Equal(t, before, got.Version)
}

func TestWALSyncFailureUnderConcurrentStrictCommits(t *testing.T) {
	mem := vfs.NewMem()
	fault := &walSyncFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	run := strata.NewRunID()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    = map[string]uint64{}
		failures atomic.Int64
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("g%d-%d", g, i)
				v, err := db.Put(ctx, run, []byte(k), value.Int(int64(i)))
				if err != nil {
					require.ErrorIs(t, err, strata.ErrFailed)
					failures.Add(1)
					return
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}()
	}
	for db.CurrentVersion() < 200 {
		time.Sleep(time.Millisecond)
	}
	fault.armed.Store(true)
	wg.Wait()
	require.Equal(t, int64(8), failures.Load(), "every writer sees the failure")
	checkFailedEverywhere(t, db, run)

	fault.armed.Store(false)
	db, err = strata.OpenWith(strata.Options{Path: "db", FS: mem})
	require.NoError(t, err)
	defer db.Close()
	for k, v := range acked {
		got, err := db.Get(ctx, run, []byte(k))
		require.NoError(t, err, k)
		require.Equal(t, v, got.Version, k)
	}
}

func TestBackgroundSyncFailureFailsBatchedDatabase(t *testing.T) {
	mem := vfs.NewMem()
	fault := &walSyncFault{}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), SyncInterval: time.Millisecond})
	require.NoError(t, err)
	run := strata.NewRunID()
	_, err = db.Put(ctx, run, []byte("before"), value.Int(1))
	require.NoError(t, err)
	fault.armed.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for db.Err() == nil && time.Now().Before(deadline) {
		// Batched commits do not wait for the fsync; the background syncer
		// hits the fault and fails the database.
		_, err = db.Put(ctx, run, []byte("during"), value.Int(2))
		if err != nil {
			require.ErrorIs(t, err, strata.ErrFailed)
		}
		time.Sleep(time.Millisecond)
	}
	require.ErrorIs(t, db.Err(), strata.ErrFailed)
	checkFailedEverywhere(t, db, run)
}

// A Flush whose fsync fails returns ErrFailed, and with it the version
// durable before, in every mode; so does every later Flush, Close's
// included. (In Strict mode everything acknowledged is durable already.
// No background sync runs: SyncInterval is an hour.)
func TestFlushFailureIsReported(t *testing.T) {
	for _, mode := range []strata.DurabilityMode{strata.DurabilityNone, strata.DurabilityBatched, strata.DurabilityStrict} {
		mem := vfs.NewMem()
		fault := &walSyncFault{}
		db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: mode, SyncInterval: time.Hour})
		require.NoError(t, err)
		run := strata.NewRunID()
		v1, err := db.Put(ctx, run, []byte("before"), value.Int(1))
		require.NoError(t, err)
		durable, err := db.Flush(ctx)
		require.NoError(t, err)
		require.Equal(t, v1, durable, "%v", mode)
		v2, err := db.Put(ctx, run, []byte("after"), value.Int(2))
		require.NoError(t, err, "%v", mode)
		fault.armed.Store(true)
		want := v1
		if mode == strata.DurabilityStrict {
			want = v2
		}
		got, err := db.Flush(ctx)
		require.ErrorIs(t, err, strata.ErrFailed, "%v", mode)
		require.Equal(t, want, got, "%v", mode)
		require.Equal(t, want, db.DurableVersion(), "%v", mode)
		require.ErrorIs(t, db.Err(), strata.ErrFailed)
		got, err = db.Flush(ctx)
		require.ErrorIs(t, err, strata.ErrFailed, "%v: a failed database", mode)
		require.Equal(t, want, got, "%v", mode)
		require.ErrorIs(t, db.Close(), strata.ErrFailed)
		got, err = db.Flush(ctx)
		require.Error(t, err, "%v: closed", mode)
		require.Equal(t, want, got, "%v", mode)
	}
}

// sstFault fails every operation of one kind on an sstable with EIO while
// armed: OpFileReadAt for failed reads, OpCreate for flushes that cannot
// write their output.
type sstFault struct {
	kind  errorfs.OpKind
	delay time.Duration // how long an operation takes before it fails
	armed atomic.Bool
}

func (f *sstFault) MaybeError(op errorfs.Op) error {
	if f.armed.Load() && strings.HasSuffix(op.Path, ".sst") && op.Kind == f.kind {
		time.Sleep(f.delay)
		return fmt.Errorf("injected: %w", errorfs.ErrInjected)
	}
	return nil
}

func (f *sstFault) String() string { return fmt.Sprintf("sst-%v-eio", f.kind) }

// A transaction whose read failed in the storage cannot commit, even if
// its function ignores the error: the read set misses what it could not
// read, so a commit could rest on a value the transaction never saw.
func TestTransactionWithAFailedReadCannotCommit(t *testing.T) {
	fault := &sstFault{kind: errorfs.OpFileReadAt}
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: errorfs.Wrap(vfs.NewMem(), fault),
		Durability: strata.DurabilityNone, MemTableSize: strata.MinMemTableSize, CacheSize: 1})
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	for i := range 3000 { // several memtables: the first keys end up in sstables
		_, err := db.Put(ctx, run, fmt.Appendf(nil, "k%04d", i), value.Bytes(make([]byte, 100)))
		require.NoError(t, err)
	}
	// Flushes run in the background: wait until only the mutable memtable
	// is left, so that the first keys are read from sstables.
	require.Eventually(t, func() bool { return db.Metrics().Storage.MemTableCount == 1 }, 30*time.Second, time.Millisecond)
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	fault.armed.Store(true)
	_, rerr := tx.Get([]byte("k0000"))
	fault.armed.Store(false)
	require.Error(t, rerr, "the read reached an sstable and failed")
	require.ErrorIs(t, rerr, errorfs.ErrInjected)

	_, err = db.Put(ctx, run, []byte("k0000"), value.Int(1)) // what the transaction could not read changes
	require.NoError(t, err)
	require.NoError(t, tx.Put([]byte("derived"), value.Int(2)))
	_, err = tx.Commit()
	require.ErrorIs(t, err, errorfs.ErrInjected, "the failed read stops the commit")
	_, err = db.Get(ctx, run, []byte("derived"))
	require.ErrorIs(t, err, strata.ErrNotFound)

	// Through Transaction, with a function that swallows the error.
	fault.armed.Store(true)
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		_, _ = tx.Get([]byte("k0001"))
		fault.armed.Store(false)
		return tx.Put([]byte("derived"), value.Int(3))
	})
	require.ErrorIs(t, err, errorfs.ErrInjected)
	_, err = db.Get(ctx, run, []byte("derived"))
	require.ErrorIs(t, err, strata.ErrNotFound)
}

// A block of an sstable whose bytes no longer match their checksum is a
// failure to read, not a verdict on the event chain: VerifyEvents returns
// an error matching ErrCorruption instead of naming an event or the head
// as corrupt (which event sits in a damaged block is not knowable).
func TestVerifyEventsReportsStorageCorruptionAsError(t *testing.T) {
	mem := vfs.NewMem()
	opts := strata.Options{Path: "db", FS: mem, Durability: strata.DurabilityNone, MemTableSize: strata.MinMemTableSize, CacheSize: 1}
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	run := strata.NewRunID()
	for i := range 3000 { // several memtables: the first events end up in sstables
		_, err := db.AppendEvent(ctx, run, "step", value.Object(map[string]value.Value{"pad": value.Bytes(bytes.Repeat([]byte{byte(i)}, 200))}))
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	// Flip one byte in the middle of every sstable, inside a data block of
	// events; the footer, index and properties at the end of the file and
	// the first block (the system records Open reads) stay intact.
	names, err := mem.List("db")
	require.NoError(t, err)
	damaged := 0
	for _, name := range names {
		if !strings.HasSuffix(name, ".sst") {
			continue
		}
		f, err := mem.OpenReadWrite(mem.PathJoin("db", name), vfs.WriteCategoryUnspecified)
		require.NoError(t, err)
		st, err := f.Stat()
		require.NoError(t, err)
		var b [1]byte
		_, err = f.ReadAt(b[:], st.Size()/2)
		require.NoError(t, err)
		b[0] ^= 0xff
		_, err = f.WriteAt(b[:], st.Size()/2)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		damaged++
	}
	require.NotZero(t, damaged, "the events were flushed to an sstable")

	db, err = strata.OpenWith(opts)
	require.NoError(t, err)
	defer db.Close()
	res, err := db.VerifyEvents(ctx, run, nil)
	require.ErrorIs(t, err, strata.ErrCorruption, "verdict %+v", res)
	require.True(t, pebble.IsCorruptionError(err), "Pebble's error is kept: %v", err)
	require.Equal(t, events.Verification{}, res)
	require.NotZero(t, db.Metrics().Storage.CorruptionEvents)
	require.NoError(t, db.Err(), "a failed read does not fail the database")
}

// rotFS counts the sstable reads that return the bytes of the event log
// head's key and, while armed, damages those after the first spare ones: bit
// rot confined to the blocks that hold a head record, seen only by the last
// reads of a call.
type rotFS struct {
	vfs.FS
	armed atomic.Bool
	spare int64
	seen  atomic.Int64
	hits  atomic.Int64
}

func (fs *rotFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &rotFile{File: f, fs: fs}, nil
}

type rotFile struct {
	vfs.File
	fs *rotFS
}

func (f *rotFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if bytes.Contains(p[:n], []byte("event-head")) && f.fs.seen.Add(1) > f.fs.spare && f.fs.armed.Load() {
		for b := p[:n]; ; {
			i := bytes.Index(b, []byte("event-head"))
			if i < 0 {
				break
			}
			b[i] ^= 0xff
			b = b[i+1:]
			f.fs.hits.Add(1)
		}
	}
	return n, err
}

// When only the blocks holding the run's head record are damaged,
// VerifyEvents returns the checksum failure as an error, not a "head
// corrupt" verdict: a block holds other records too, and which of them is
// damaged is not knowable.
func TestVerifyEventsReportsDamagedHeadBlockAsError(t *testing.T) {
	fs := &rotFS{FS: vfs.NewMem()}
	opts := strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityNone, MemTableSize: strata.MinMemTableSize, CacheSize: 1}
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	run := strata.NewRunID()
	for i := range 3000 {
		_, err := db.AppendEvent(ctx, run, "step", value.Object(map[string]value.Value{"pad": value.Bytes(bytes.Repeat([]byte{byte(i)}, 200))}))
		require.NoError(t, err)
	}
	other := strata.NewRunID()
	for i := range 3000 { // pushes the run's last head out of the memtable
		_, err := db.Put(ctx, other, fmt.Appendf(nil, "k%04d", i), value.Bytes(make([]byte, 200)))
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
	db, err = strata.OpenWith(opts)
	require.NoError(t, err)
	defer db.Close()

	// The event scan reads the blocks after each sstable's last event, which
	// hold head records, to find the end of the log; the head's own read
	// comes last. Count one call's reads (with a block cache too small to
	// keep a block, every call reads the same ones, once the first has
	// opened every sstable and compactions, which read blocks too, have
	// settled), then damage only the last of them.
	var counts []int64
	for len(counts) < 2 || counts[len(counts)-1] != counts[len(counts)-2] {
		require.Less(t, len(counts), 50, "the reads of a call do not settle: %v", counts)
		fs.seen.Store(0)
		res, err := db.VerifyEvents(ctx, run, nil)
		require.NoError(t, err)
		require.True(t, res.Valid)
		counts = append(counts, fs.seen.Load())
	}
	fs.spare = counts[len(counts)-1] - 1
	fs.seen.Store(0)
	fs.armed.Store(true)
	res, err := db.VerifyEvents(ctx, run, nil)
	require.NotZero(t, fs.hits.Load(), "the head was read from an sstable")
	require.ErrorIs(t, err, strata.ErrCorruption, "verdict %+v", res)
	require.True(t, pebble.IsCorruptionError(err), "Pebble's error is kept: %v", err)
	require.Equal(t, events.Verification{}, res)
	require.NotZero(t, db.Metrics().Storage.CorruptionEvents)
	require.NoError(t, db.Err(), "a failed read does not fail the database")
}

// A flush that fails (its table cannot be created, written or synced)
// fails the database, in every mode, where Pebble alone would retry it while
// commits fill the memtables and then block inside Pebble. Commits that
// already wait inside Pebble for room in the memtables when the failure is
// recorded (large values, or a disk that takes long to fail: the slow
// case's failing fsync takes 300 ms) get ErrFailed too, and so does Close,
// promptly. Every commit acknowledged before is in the WAL: a reopen once
// the fault has cleared has them all. The tables Pebble creates as it
// retries the flush after the failure are not left behind, one per attempt.
func TestFlushFailureFailsTheDatabase(t *testing.T) {
	type fault struct {
		kind  errorfs.OpKind
		delay time.Duration
	}
	faults := map[string]fault{
		"create":    {kind: errorfs.OpCreate},
		"write":     {kind: errorfs.OpFileWrite},
		"sync":      {kind: errorfs.OpFileSyncData},
		"slow-sync": {kind: errorfs.OpFileSyncData, delay: 300 * time.Millisecond},
	}
	modes := []strata.DurabilityMode{strata.DurabilityNone, strata.DurabilityBatched, strata.DurabilityStrict}
	for name, f := range faults {
		for _, mode := range modes {
			for _, size := range []int{100, 1000} {
				t.Run(fmt.Sprintf("%s/%v/%dB", name, mode, size), func(t *testing.T) {
					flushFailure(t, &sstFault{kind: f.kind, delay: f.delay}, mode, size)
				})
			}
		}
	}
}

// flushFailure runs four writers into fault, armed once the store is
// open, until each gets ErrFailed, and checks what TestFlushFailure...
// promises.
func flushFailure(t *testing.T, fault *sstFault, mode strata.DurabilityMode, size int) {
	const writers = 4
	mem := vfs.NewMem()
	opts := strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: mode, MemTableSize: strata.MinMemTableSize}
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	val := value.Bytes(make([]byte, size))
	before, err := mem.List("db")
	require.NoError(t, err)
	fault.armed.Store(true)
	w := startPutWriters(db, run, writers, val, 100000)
	w.requireFailure(t, db, run, val, "flush")
	// The flush's first attempt, made before the failure, may leave its
	// table; none of the retries after it does.
	partial := newTables(t, mem, before)
	require.LessOrEqual(t, len(partial), 1, "tables of failed flushes left behind: %v", partial)

	fault.armed.Store(false)
	opts.FS = mem
	db = w.reopen(t, opts, run, val)
	_, err = db.Flush(ctx)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	for _, name := range partial {
		_, err := mem.Stat(mem.PathJoin("db", name))
		require.ErrorIs(t, err, os.ErrNotExist, "the reopen removes the partial table %s", name)
	}
	t.Logf("commits acknowledged before the failure: %v; partial tables: %v", w.acked, partial)
}

// putWriters are goroutines that each Put fresh keys into a run until a
// Put fails, and count the Puts acknowledged.
type putWriters struct {
	acked []int      // per writer; read once the writer has sent to errs
	errs  chan error // each writer's last error
}

func putWritersKey(w, i int) []byte { return fmt.Appendf(nil, "w%d-%06d", w, i) }

// startPutWriters starts n writers of val into run; with limit > 0, a
// writer that reaches limit Puts stops with an error.
func startPutWriters(db *strata.Database, run strata.RunID, n int, val strata.Value, limit int) *putWriters {
	pw := &putWriters{acked: make([]int, n), errs: make(chan error, n)}
	for w := range n {
		go func() {
			for i := 0; ; i++ {
				if i == limit && limit > 0 {
					pw.errs <- fmt.Errorf("writer %d: no failure in %d Puts", w, limit)
					return
				}
				if _, err := db.Put(ctx, run, putWritersKey(w, i), val); err != nil {
					pw.errs <- err
					return
				}
				pw.acked[w]++
			}
		}()
	}
	return pw
}

// requireFailure waits for every writer to fail with ErrFailed, and checks
// that db failed for the injected fault, in what (a flush, a compaction),
// refuses a Put, and that Close returns the failure.
func (pw *putWriters) requireFailure(t *testing.T, db *strata.Database, run strata.RunID, val strata.Value, what string) {
	t.Helper()
	for range pw.acked {
		require.ErrorIs(t, testutil.WaitFor(t, pw.errs), strata.ErrFailed)
	}
	failure := db.Err()
	require.ErrorIs(t, failure, strata.ErrFailed)
	require.ErrorIs(t, failure, errorfs.ErrInjected, "the cause is kept")
	require.ErrorContains(t, failure, what)
	_, err := db.Put(ctx, run, []byte("after"), val)
	require.ErrorIs(t, err, strata.ErrFailed)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	require.ErrorIs(t, testutil.WaitFor(t, closed), strata.ErrFailed)
}

// reopen opens the database with opts once the fault has cleared, checks
// that it holds every Put the writers acknowledged and takes a new one, and
// returns it (closed when the test ends, if the caller does not).
func (pw *putWriters) reopen(t *testing.T, opts strata.Options, run strata.RunID, val strata.Value) *strata.Database {
	t.Helper()
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	pw.requireAcked(t, db, run, val)
	_, err = db.Put(ctx, run, []byte("after"), val)
	require.NoError(t, err)
	return db
}

// requireAcked checks that db holds every Put the writers acknowledged.
func (pw *putWriters) requireAcked(t *testing.T, db *strata.Database, run strata.RunID, val strata.Value, msg ...any) {
	t.Helper()
	for w, n := range pw.acked {
		for i := range n {
			got, err := db.Get(ctx, run, putWritersKey(w, i))
			require.NoError(t, err, "%v: acknowledged commit %d of %d of writer %d", fmt.Sprint(msg...), i, n, w)
			require.Equal(t, val, got.Value)
		}
	}
}

// Close racing a flush that fails: whichever comes first (the failure,
// which fails the database, or Close's last sync barrier, after which the
// failure is only logged), Close returns, the writers return, and every
// acknowledged commit survives. Close flushes the memtable last, and a
// memtable rotation there waits for room that only the failing flush
// makes: it hung until the fence let that flush succeed in memory.
func TestCloseRacingAFailingFlush(t *testing.T) {
	const writers = 2
	for iter := range 30 {
		mem := vfs.NewMem()
		fault := &sstFault{kind: errorfs.OpCreate}
		opts := strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault), Durability: strata.DurabilityStrict, MemTableSize: strata.MinMemTableSize}
		db, err := strata.OpenWith(opts)
		require.NoError(t, err)
		run := strata.NewRunID()
		val := value.Bytes(make([]byte, 100))
		w := startPutWriters(db, run, writers, val, 0)
		for db.CurrentVersion() < uint64(150+iter*5) {
			time.Sleep(50 * time.Microsecond)
		}
		fault.armed.Store(true)
		time.Sleep(time.Duration(iter%6) * 200 * time.Microsecond)
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		cerr := testutil.WaitFor(t, closed)
		if cerr != nil {
			require.ErrorIs(t, cerr, strata.ErrFailed, "iteration %d", iter)
		}
		for range writers {
			err := testutil.WaitFor(t, w.errs)
			if !errors.Is(err, strata.ErrFailed) {
				require.ErrorIs(t, err, strata.ErrClosed, "iteration %d", iter)
			}
		}
		fault.armed.Store(false)
		opts.FS = mem
		db, err = strata.OpenWith(opts)
		require.NoError(t, err, "iteration %d", iter)
		w.requireAcked(t, db, run, val, "iteration ", iter)
		require.NoError(t, db.Close())
	}
}

// Open flushes a new store's first record, and flushes what it replays
// from a WAL: a flush that fails there fails Open with ErrFailed wrapping
// the cause, rather than waiting for Pebble's retries, and the next Open,
// once the fault has cleared, works and has every synced commit.
func TestOpenWithAFailingFlushFails(t *testing.T) {
	t.Run("new store", func(t *testing.T) {
		mem := vfs.NewMem()
		fault := &sstFault{kind: errorfs.OpCreate}
		fault.armed.Store(true)
		requireOpenFails(t, strata.Options{Path: "db", FS: errorfs.Wrap(mem, fault)})
		fault.armed.Store(false)
		db, err := strata.OpenWith(strata.Options{Path: "db", FS: mem})
		require.NoError(t, err)
		require.NoError(t, db.Close())
	})
	t.Run("replay", func(t *testing.T) {
		mem := vfs.NewCrashableMem()
		opts := strata.Options{Path: "db", FS: mem, Durability: strata.DurabilityStrict}
		db, err := strata.OpenWith(opts)
		require.NoError(t, err)
		run := strata.NewRunID()
		_, err = db.Put(ctx, run, []byte("k"), value.Int(1))
		require.NoError(t, err)
		img := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		require.NoError(t, db.Close())
		fault := &sstFault{kind: errorfs.OpCreate}
		fault.armed.Store(true)
		requireOpenFails(t, strata.Options{Path: "db", FS: errorfs.Wrap(img, fault), Durability: strata.DurabilityStrict})
		fault.armed.Store(false)
		db, err = strata.OpenWith(strata.Options{Path: "db", FS: img, Durability: strata.DurabilityStrict})
		require.NoError(t, err)
		defer db.Close()
		got, err := db.Get(ctx, run, []byte("k"))
		require.NoError(t, err)
		require.Equal(t, value.Int(1), got.Value)
	})
}

// An Open during which the store fails returns ErrFailed, and does not end
// the process. Here the new MANIFEST cannot be created (as in a directory
// the process cannot write: found by a black-box audit), after Pebble's
// Open has flushed what it replayed and that flush, a fourth overlapping
// table in level 0, has started a compaction. Pebble's Open used to fail
// at its last step (renaming its OPTIONS file, refused once the store has
// failed) and tear down its table cache under the running compaction,
// which panicked with a division by zero in most runs; the OPTIONS file
// now goes to the overlay, Open completes, and Close stops the compaction.
func TestOpenFailingWhileItCompactsReturns(t *testing.T) {
	img, run := compactingOpenImage(t)
	// Each fault strikes once, at the first operation of its kind on its
	// files: the MANIFEST Open creates, or the OPTIONS file it writes last
	// (through a temporary file it renames).
	options := []string{"temporary."} // what Open writes, not the OPTIONS file it reads
	// The last case fails the fsync of the directory that follows the
	// OPTIONS file's rename (the prefix names the operation that arms it).
	faults := []struct {
		name   string
		kind   errorfs.OpKind
		prefix []string
		after  errorfs.OpKind
	}{
		{"create MANIFEST", errorfs.OpCreate, []string{"MANIFEST-"}, 0},
		{"create OPTIONS", errorfs.OpCreate, options, 0},
		{"write OPTIONS", errorfs.OpFileWrite, options, 0},
		{"sync OPTIONS", errorfs.OpFileSync, options, 0},
		{"rename OPTIONS", errorfs.OpRename, options, 0},
		{"sync directory after OPTIONS", errorfs.OpFileSync, options, errorfs.OpRename},
		{"list directory after OPTIONS", errorfs.OpList, options, errorfs.OpRename},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			for range 10 {
				var armed, struck atomic.Bool
				once := errorfs.InjectorFunc(func(op errorfs.Op) error {
					base := filepath.Base(op.Path)
					named := slices.ContainsFunc(f.prefix, func(p string) bool { return strings.HasPrefix(base, p) })
					if f.after != 0 {
						if op.Kind == f.after && named {
							armed.Store(true)
						}
						named = armed.Load() && base == "db"
					}
					if op.Kind == f.kind && named && struck.CompareAndSwap(false, true) {
						return errorfs.ErrInjected
					}
					return nil
				})
				fs := errorfs.Wrap(img.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}), once)
				requireOpenFails(t, strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityStrict})
				require.True(t, struck.Load(), "the fault struck")
			}
		})
	}
	requireCompactingImageRecovers(t, img, run)
}

// compactingOpenImageKeys is the number of keys compactingOpenImage writes.
const compactingOpenImageKeys = 50

// compactingOpenImage returns a crash image of a Strict store whose Open
// replays a WAL and flushes it into a level 0 of overlapping tables, which
// starts a compaction, and the run its keys k000... are in (each written
// in four sessions, 3 last).
func compactingOpenImage(t *testing.T) (*vfs.MemFS, strata.RunID) {
	t.Helper()
	mem := vfs.NewCrashableMem()
	opts := strata.Options{Path: "db", FS: mem, Durability: strata.DurabilityStrict}
	run := strata.NewRunID()
	var img *vfs.MemFS
	for s := range 4 { // each Close leaves an overlapping table in level 0; the last session crashes
		db, err := strata.OpenWith(opts)
		require.NoError(t, err)
		for i := range compactingOpenImageKeys {
			_, err := db.Put(ctx, run, fmt.Appendf(nil, "k%03d", i), value.Int(int64(s)))
			require.NoError(t, err)
		}
		if s == 3 {
			img = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		}
		require.NoError(t, db.Close())
	}
	return img, run
}

// requireCompactingImageRecovers opens img and checks that the crashed
// session's synced commits are all there.
func requireCompactingImageRecovers(t *testing.T, img vfs.FS, run strata.RunID) {
	t.Helper()
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: img, Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	defer db.Close()
	for i := range compactingOpenImageKeys {
		got, err := db.Get(ctx, run, fmt.Appendf(nil, "k%03d", i))
		require.NoError(t, err)
		require.Equal(t, value.Int(3), got.Value, "the crashed session's synced commits are recovered")
	}
}

// Every listing of the directory that Open makes fails in turn: Open
// returns the fault, never as ErrCorruption (the store is not damaged),
// the process lives (a listing failing inside Pebble's Open after the
// flush of what it replayed started a compaction ended it, before the
// fence took listings in: a black-box audit's finding), and the store then
// opens whole.
func TestOpenSurvivesAFailingDirectoryListing(t *testing.T) {
	img, run := compactingOpenImage(t)
	for n := 1; ; n++ {
		var lists atomic.Int64
		inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
			if op.Kind == errorfs.OpList && lists.Add(1) == int64(n) {
				return errorfs.ErrInjected
			}
			return nil
		})
		fs := errorfs.Wrap(img.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}), inj)
		db, err := strata.OpenWith(strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityStrict})
		if lists.Load() < int64(n) {
			require.NoError(t, err, "Open listed the directory %d times", n-1)
			require.NoError(t, db.Close())
			require.Greater(t, n, 3)
			break
		}
		require.ErrorIs(t, err, errorfs.ErrInjected, "listing %d", n)
		require.NotErrorIs(t, err, strata.ErrCorruption, "listing %d", n)
	}
	requireCompactingImageRecovers(t, img, run)
}

// Strict commits race a failure that freezes the WAL: four writers commit
// while every MANIFEST write fails, so the first flush fails the database.
// A commit whose fsync the fence dropped must find the failure recorded
// when it wakes; none acknowledged may be missing after a reopen, from the
// files as left or after a crash. (The failure used to be recorded just
// after the freeze, and a commit waking in between was acknowledged and
// lost, in about one iteration in a hundred: a black-box audit's finding.)
func TestStrictCommitsRacingAFailureAreNeverAcknowledgedAndLost(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 20
	}
	for it := range iterations {
		mem := vfs.NewCrashableMem()
		var armed atomic.Bool
		fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
			if armed.Load() && op.Kind == errorfs.OpFileWrite && strings.HasPrefix(filepath.Base(op.Path), "MANIFEST-") {
				return errorfs.ErrInjected
			}
			return nil
		}))
		opts := strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityStrict, MemTableSize: strata.MinMemTableSize}
		db, err := strata.OpenWith(opts)
		require.NoError(t, err)
		armed.Store(true)
		run := strata.NewRunID()
		var mu sync.Mutex
		var acked [][]byte
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					k := fmt.Appendf(nil, "w%d-%05d", w, i)
					if _, err := db.Put(ctx, run, k, value.Bytes(make([]byte, 512))); err != nil {
						assert.ErrorIs(t, err, strata.ErrFailed)
						return
					}
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.ErrorIs(t, db.Close(), strata.ErrFailed)
		for name, img := range map[string]vfs.FS{"crash": mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}), "as left": mem} {
			db, err := strata.OpenWith(strata.Options{Path: "db", FS: img})
			require.NoError(t, err)
			for _, k := range acked {
				_, err := db.Get(ctx, run, k)
				require.NoError(t, err, "iteration %d, %s: acknowledged commit %s lost", it, name, k)
			}
			require.NoError(t, db.Close())
		}
	}
}

// A failing fsync of the store's directory after Open (Pebble syncs it as
// it rotates its WAL and its MANIFEST, which small memtables make frequent)
// fails the database, where Pebble would panic and end the process: every
// commit after it fails with ErrFailed, Close returns, and a reopen with
// the fault gone recovers every acknowledged commit, as a prefix.
func TestDirectorySyncFailureFailsTheDatabase(t *testing.T) {
	mem := vfs.NewMem()
	var armed atomic.Bool
	var struck atomic.Int64
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && op.Kind == errorfs.OpFileSync && op.Path == "db" {
			struck.Add(1)
			return errorfs.ErrInjected
		}
		return nil
	}))
	opts := strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityStrict, MemTableSize: strata.MinMemTableSize}
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	run := strata.NewRunID()
	val := value.Bytes(bytes.Repeat([]byte{7}, 1000))
	acked := 0
	for ; acked < 100; acked++ {
		_, err := db.Put(ctx, run, fmt.Appendf(nil, "k%05d", acked), val)
		require.NoError(t, err)
	}
	armed.Store(true)
	for i := acked; i < acked+10_000; i++ {
		_, err = db.Put(ctx, run, fmt.Appendf(nil, "k%05d", i), val)
		if err != nil {
			break
		}
		acked++
	}
	require.ErrorIs(t, err, strata.ErrFailed)
	require.ErrorIs(t, err, errorfs.ErrInjected)
	require.Positive(t, struck.Load())
	_, err = db.Put(ctx, run, []byte("after"), val)
	require.ErrorIs(t, err, strata.ErrFailed, "every later commit fails")
	require.ErrorIs(t, db.Close(), strata.ErrFailed)

	armed.Store(false)
	db, err = strata.OpenWith(opts)
	require.NoError(t, err)
	defer db.Close()
	for i := range acked {
		_, err := db.Get(ctx, run, fmt.Appendf(nil, "k%05d", i))
		require.NoError(t, err, "acknowledged commit %d of %d", i, acked)
	}
	_, err = db.Get(ctx, run, fmt.Appendf(nil, "k%05d", acked+1))
	require.ErrorIs(t, err, strata.ErrNotFound, "nothing after the failed commit")
}

// Pebble reports some failures through its logger's Fatalf, formatting the
// error with %s: the failure Strata records keeps that error as its cause,
// so a full disk is recognisable behind ErrFailed.
func TestFailureReportedThroughPebblesLoggerKeepsItsCause(t *testing.T) {
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpCreate && strings.HasPrefix(filepath.Base(op.Path), "marker.manifest.") {
			return fmt.Errorf("disk full: %w", syscall.ENOSPC)
		}
		return nil
	}))
	_, err := strata.OpenWith(strata.Options{Path: "db", FS: fs})
	require.ErrorIs(t, err, strata.ErrFailed)
	require.ErrorIs(t, err, syscall.ENOSPC)
}

// requireOpenFails checks that OpenWith(opts) returns, in time, an error
// matching ErrFailed and the injected fault.
func requireOpenFails(t *testing.T, opts strata.Options) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		db, err := strata.OpenWith(opts)
		if err == nil {
			err = errors.Join(errors.New("Open succeeded"), db.Close())
		}
		done <- err
	}()
	err := testutil.WaitFor(t, done)
	require.ErrorIs(t, err, strata.ErrFailed)
	require.ErrorIs(t, err, errorfs.ErrInjected)
}

// newTables returns the tables in fs's directory db that are not in before.
func newTables(t *testing.T, fs vfs.FS, before []string) []string {
	t.Helper()
	names, err := fs.List("db")
	require.NoError(t, err)
	var tables []string
	for _, name := range names {
		if strings.HasSuffix(name, ".sst") && !slices.Contains(before, name) {
			tables = append(tables, name)
		}
	}
	return tables
}

// walDamageStore writes n commits (keys k000, k001, ...) with opts, whose
// Path and FS it sets, to a new database on a crashable MemFS, calls
// beforeCrash with the database and its FS if it is not nil, and returns a crash image taken right after,
// the path of its newest WAL and that WAL's size.
func walDamageStore(t *testing.T, opts strata.Options, n int, beforeCrash func(*strata.Database, vfs.FS)) (vfs.FS, string, int64) {
	t.Helper()
	mem := vfs.NewCrashableMem()
	opts.Path, opts.FS = "db", mem
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	for i := range n {
		_, err := db.Put(ctx, walDamageRun, fmt.Appendf(nil, "k%03d", i), value.Bytes(bytes.Repeat([]byte{byte(i)}, 200)))
		require.NoError(t, err)
	}
	if beforeCrash != nil {
		beforeCrash(db, mem)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	require.NoError(t, db.Close())
	wal := testutil.NewestWAL(t, crashed, "db")
	st, err := crashed.Stat(wal)
	require.NoError(t, err)
	return crashed, wal, st.Size()
}

// strictWithoutLoop is Strict with its background barrier held off (a
// SyncInterval of an hour): no sync mark is recorded, so the WAL's own
// checks are all that tells damage from a torn tail (see
// TestStrictSyncMarksCoverTheLastBlock for the barrier).
var strictWithoutLoop = strata.Options{Durability: strata.DurabilityStrict, SyncInterval: time.Hour}

var walDamageRun = strata.MustParseRunID("0193a0f0-0000-7000-8000-000000000001")

// walBlock is the size of Pebble's WAL blocks.
const walBlock = 32 << 10

// lastWALBlock returns the offset of the last (partial) block of a WAL of
// size bytes.
func lastWALBlock(size int64) int64 { return (size - 1) / walBlock * walBlock }

// refusedDamage flips the byte at off of the WAL wal in the store "db" on
// fs, which holds commits k000..k<n-1>, and opens it: it reports whether Open
// refused the store (with ErrCorruption, nothing else), and otherwise
// requires that every commit is still there.
func refusedDamage(t *testing.T, fs vfs.FS, wal string, off int64, n int) bool {
	t.Helper()
	testutil.FlipByte(t, fs, wal, off)
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: fs})
	if err != nil {
		require.ErrorIs(t, err, strata.ErrCorruption, "damage at offset %d", off)
		return true
	}
	defer db.Close()
	for i := range n {
		_, err := db.Get(ctx, walDamageRun, fmt.Appendf(nil, "k%03d", i))
		require.NoError(t, err, "damage at offset %d was tolerated but lost commit %d", off, i)
	}
	return false
}

// Damage inside the WAL before its last 32 KiB block is corruption, not a
// torn write: every later block carries chunks written after the damaged
// record was synced, whose synced offsets vouch that it was whole. Open
// refuses the store with ErrCorruption instead of recovering a prefix that
// silently drops acknowledged commits. Each offset is tried on its own copy
// of a store whose only WAL is the one a new database starts with. A flipped
// byte that Open tolerates must be one that held no data (the zero padding
// at the end of a block).
func TestWALDamageBeforeItsLastBlockFailsOpen(t *testing.T) {
	const n = 400
	_, _, size := walDamageStore(t, strictWithoutLoop, n, nil)
	last := lastWALBlock(size)
	require.GreaterOrEqual(t, last, int64(2*walBlock), "the WAL spans three blocks or more")
	refused, tried := 0, 0
	for off := int64(0); off < last; off += 997 {
		tried++
		fs, wal, _ := walDamageStore(t, strictWithoutLoop, n, nil)
		if refusedDamage(t, fs, wal, off, n) {
			refused++
		}
	}
	require.Greater(t, refused, tried*9/10)
}

// Batched and None commits synced together by a barrier (Flush here, or the
// Batched syncer): Pebble v2.1.7 records synced offsets that lag the data,
// so damage past the WAL's first block would be taken for a torn tail and
// the commits after it dropped silently; in every mode, damage in the WAL's
// last block would. The barrier's sync mark, recorded in STRATA-SYNCMARK,
// makes Open refuse the store instead, for damage anywhere before the
// barrier, the last block included (Strict commits are durable before the
// Flush; its barrier only records the mark). A flipped byte that Open
// tolerates must be one that held no data (block padding).
func TestWALDamageBeforeTheLastSyncMarkFailsOpen(t *testing.T) {
	const n = 400
	for _, mode := range []strata.DurabilityMode{strata.DurabilityBatched, strata.DurabilityNone, strata.DurabilityStrict} {
		t.Run(mode.String(), func(t *testing.T) {
			opts := strata.Options{Durability: mode, SyncInterval: time.Hour, MaxPendingCommits: 1 << 30} // no background barrier
			flush := func(db *strata.Database, _ vfs.FS) {
				_, err := db.Flush(ctx) // a barrier, whose mark is recorded at once: the session's first
				require.NoError(t, err)
			}
			_, _, size := walDamageStore(t, opts, n, flush)
			require.GreaterOrEqual(t, lastWALBlock(size), int64(2*walBlock), "the WAL spans three blocks or more")
			refused, tried, inLast := 0, 0, 0
			for off := int64(0); off < size; off += 997 {
				tried++
				fs, wal, _ := walDamageStore(t, opts, n, flush)
				if refusedDamage(t, fs, wal, off, n) {
					refused++
					if off >= lastWALBlock(size) {
						inLast++
					}
				}
			}
			require.Greater(t, refused, tried*9/10)
			require.Positive(t, inLast, "damage in the last block is refused too")
		})
	}
}

// closedStore writes commits in two sessions, each closed cleanly, on a
// MemFS. Close flushes the memtable after its last sync barrier, so the
// store holds no WAL data and its last mark is in a table only the MANIFEST
// names.
func closedStore(t *testing.T, n int) vfs.FS {
	t.Helper()
	mem := vfs.NewMem()
	for session := range 2 {
		db, err := strata.OpenWith(strata.Options{Path: "db", FS: mem})
		require.NoError(t, err)
		for i := session * n / 2; i < (session+1)*n/2; i++ {
			_, err := db.Put(ctx, walDamageRun, fmt.Appendf(nil, "k%03d", i), value.Int(int64(i)))
			require.NoError(t, err)
		}
		require.NoError(t, db.Close())
	}
	return mem
}

// copyStore copies the files of the store "db" on src to a new MemFS.
func copyStore(t *testing.T, src vfs.FS) vfs.FS {
	t.Helper()
	dst := vfs.NewMem()
	require.NoError(t, dst.MkdirAll("db", 0o755))
	names, err := src.List("db")
	require.NoError(t, err)
	for _, name := range names {
		require.NoError(t, vfs.CopyAcrossFS(src, src.PathJoin("db", name), dst, dst.PathJoin("db", name)))
	}
	return dst
}

// currentManifest returns the path of the MANIFEST the marker names.
func currentManifest(t *testing.T, fs vfs.FS) string {
	t.Helper()
	names, err := fs.List("db")
	require.NoError(t, err)
	for _, name := range names {
		if rest, ok := strings.CutPrefix(name, "marker.manifest."); ok {
			return fs.PathJoin("db", rest[strings.Index(rest, ".")+1:])
		}
	}
	t.Fatalf("no manifest marker in %v", names)
	return ""
}

// Pebble takes a damaged record at the end of the MANIFEST for its end and
// opens an older version of the store (an audit found every key of a store
// gone this way, without an error). After a clean Close the last sync mark
// is in the table of the last flush, which only the MANIFEST's last edits
// name, so a rolled-back MANIFEST recovers an older mark and Open refuses
// the store; damage that drops a compaction's edit names tables already
// deleted, also refused. Every byte of the MANIFEST is tried: Open either
// refuses with ErrCorruption or reads every commit back.
func TestManifestDamageAfterCleanCloseFailsOpen(t *testing.T) {
	const n = 200
	base := closedStore(t, n)
	refused, size := flipEveryManifestByte(t, base, func() vfs.FS { return copyStore(t, base) }, n)
	// How many flips are refused depends on what the MANIFEST holds when
	// Close returns (whether a compaction's edit and the WAL's deletion
	// came before it): a flip that drops edits whose files are all still
	// there loses nothing and is tolerated. Locally all 358 were refused;
	// one CI run under -race refused 157 of 264.
	require.Positive(t, refused)
	t.Logf("%d of %d flipped bytes refused, none lost a commit", refused, size)
}

// flipEveryManifestByte flips each byte of the current MANIFEST of the
// store "db" on fs in turn, each on a fresh image, and checks that Open
// refuses the image or reads every commit back (refusedDamage). It returns
// how many flips were refused, and the MANIFEST's size.
func flipEveryManifestByte(t *testing.T, fs vfs.FS, image func() vfs.FS, n int) (refused int, size int64) {
	t.Helper()
	manifest := currentManifest(t, fs)
	st, err := fs.Stat(manifest)
	require.NoError(t, err)
	for off := int64(0); off < st.Size(); off++ {
		if refusedDamage(t, image(), manifest, off, n) {
			refused++
		}
	}
	return refused, st.Size()
}

// writeFlushingStore writes n commits of about 60 bytes each to a new
// database at opts.Path with the smallest memtable, so that it flushes
// several times, and closes it.
func writeFlushingStore(t *testing.T, opts strata.Options, n int) {
	t.Helper()
	opts.MemTableSize = strata.MinMemTableSize
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	for i := range n {
		_, err := db.Put(ctx, walDamageRun, fmt.Appendf(nil, "k%03d", i), value.String("a value of some forty bytes, to flush"))
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
}

// The same in a store written in one session whose memtable flushed several
// times, on the disk as a power cut right after Close leaves it (an audit
// found 213 of 499 flips opening it without an error and without most of
// its keys). Pebble keeps obsolete WALs to reuse their files, each still
// holding its commits, the newest one Close's final sync mark, and it does
// not sync the directory after deleting the others, so a power cut can
// bring deleted WALs back too. A MANIFEST rolled back to an edit before
// them made Pebble replay what it found: the store opened with the final
// mark but without the tables of the WALs missing in between. Close now
// removes every WAL but the live one once its flush emptied them all, and
// syncs the directory.
func TestManifestDamageAfterFlushesInOneSessionFailsOpen(t *testing.T) {
	const n = 1500
	base := vfs.NewCrashableMem()
	writeFlushingStore(t, strata.Options{Path: "db", FS: base}, n)
	afterClose := base.CrashClone(vfs.CrashCloneCfg{}) // what is synced
	names, err := afterClose.List("db")
	require.NoError(t, err)
	wals := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".log") {
			wals++
		}
	}
	require.Equal(t, 1, wals, "only the live WAL is left: %v", names)

	refused, size := flipEveryManifestByte(t, afterClose, func() vfs.FS { return base.CrashClone(vfs.CrashCloneCfg{}) }, n)
	require.Positive(t, refused)
	t.Logf("%d of %d flipped bytes refused, none lost a commit", refused, size)
}

// On the real disk too, Close leaves only the live WAL, and the store
// reopens with every commit.
func TestCloseLeavesOnlyTheLiveWALOnDisk(t *testing.T) {
	const n = 1500
	dir := t.TempDir()
	writeFlushingStore(t, strata.Options{Path: dir}, n)
	wals, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	require.Len(t, wals, 1)
	db, err := strata.Open(dir)
	require.NoError(t, err)
	defer db.Close()
	for i := range n {
		_, err := db.Get(ctx, walDamageRun, fmt.Appendf(nil, "k%03d", i))
		require.NoError(t, err)
	}
}

// Without its sync mark file a store opens as before the file existed, and
// the check is off: the file only ever adds a refusal.
func TestStoreWithoutSyncMarkFileOpens(t *testing.T) {
	fs := closedStore(t, 10)
	require.NoError(t, fs.Remove(fs.PathJoin("db", pebbleadapter.SyncMarkFileName)))
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: fs})
	require.NoError(t, err)
	_, err = db.Get(ctx, walDamageRun, []byte("k009"))
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = fs.Stat(fs.PathJoin("db", pebbleadapter.SyncMarkFileName))
	require.NoError(t, err, "Close writes it again")
}

// In Strict mode the background loop issues a barrier per SyncInterval
// while commits arrive, and its sync mark is recorded at most once a
// second: once a mark after the commits is recorded, damage in the WAL's
// last block, which Pebble cannot tell from a torn write, is refused after
// a crash too (TestWALLastBlockDamageLosesTheRestOfIt shows the loss
// without the loop).
func TestStrictSyncMarksCoverTheLastBlock(t *testing.T) {
	const n = 400
	// In a new store every sync mark is a barrier of the loop's, which
	// Metrics counts. Once no barrier has been issued for a tick of 100 ms
	// (a hundred SyncIntervals) the loop has caught up with the commits,
	// and once the file holds that barrier's mark (it is written at most
	// once a second) the mark covers every commit.
	waitForMark := func(db *strata.Database, fs vfs.FS) {
		last := uint64(0)
		require.Eventually(t, func() bool {
			syncs := db.Metrics().Syncs
			idle := syncs == last
			last = syncs
			return idle && syncs > 0 && testutil.ReadSyncMark(t, fs, "db") == syncs
		}, time.Minute, 100*time.Millisecond)
	}
	opts := strata.Options{Durability: strata.DurabilityStrict, SyncInterval: time.Millisecond}
	crashed, wal, size := walDamageStore(t, opts, n, waitForMark)
	require.True(t, refusedDamage(t, crashed, wal, lastWALBlock(size)+100, n), "damage in the last block is refused")
}

// Damage in the newest WAL's last block cannot be told from a write torn by
// the crash: no later chunk vouches for the damaged record, so recovery ends
// before it and every commit from there on is lost although Strict
// acknowledged it. This pins down the known limitation documented in
// docs/durability.md ("damage to the WAL's last block"): what is recovered
// is still a prefix of the commits.
func TestWALLastBlockDamageLosesTheRestOfIt(t *testing.T) {
	const n = 400
	fs, wal, size := walDamageStore(t, strictWithoutLoop, n, nil)
	testutil.FlipByte(t, fs, wal, lastWALBlock(size)+100)
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: fs})
	require.NoError(t, err)
	defer db.Close()
	found := 0
	for i := range n {
		_, err := db.Get(ctx, walDamageRun, fmt.Appendf(nil, "k%03d", i))
		if err == nil {
			require.Equal(t, i, found, "the recovered commits are a prefix")
			found++
			continue
		}
		require.ErrorIs(t, err, strata.ErrNotFound)
	}
	require.Less(t, found, n-10, "the commits after the damaged one in the block are lost too")
	require.Greater(t, found, n/2, "the blocks before the damaged one are recovered")
}

// compactionFault is a filesystem whose compactions cannot write their
// output once armed: creating a compaction's table, writing to it or
// syncing it (op) fails with an injected EIO after delay. Flushes, WALs
// and reads are untouched.
type compactionFault struct {
	vfs.FS
	op    string // "create", "write" or "sync"
	delay time.Duration
	armed atomic.Bool
}

// compactionCategory is the write category Pebble creates a compaction's
// output with.
const compactionCategory vfs.DiskWriteCategory = "pebble-compaction"

func (fs *compactionFault) err(op string) error {
	time.Sleep(fs.delay)
	return fmt.Errorf("injected compaction %s fault: %w", op, errorfs.ErrInjected)
}

func (fs *compactionFault) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if !fs.armed.Load() || category != compactionCategory {
		return fs.FS.Create(name, category)
	}
	if fs.op == "create" {
		return nil, fs.err("create")
	}
	f, err := fs.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return &compactionFaultFile{File: f, fs: fs}, nil
}

type compactionFaultFile struct {
	vfs.File
	fs *compactionFault
}

func (f *compactionFaultFile) Write(p []byte) (int, error) {
	if f.fs.op == "write" {
		return 0, f.fs.err("write")
	}
	return f.File.Write(p)
}

func (f *compactionFaultFile) Sync() error {
	if f.fs.op == "sync" {
		return f.fs.err("sync")
	}
	return f.File.Sync()
}

func (f *compactionFaultFile) SyncData() error { return f.Sync() }

// A compaction that cannot write its output (a full disk, an I/O error)
// fails the database, as a failed flush does: Pebble would retry it while
// level 0 grows until Pebble stalls every write, for good. The writers get
// ErrFailed, Close returns, and every acknowledged commit survives a
// reopen once the fault has cleared. In the slow cases the failing
// operation takes 300 ms, long enough for level 0 to fill and writes to
// stall before the failure is known: the writers stalled inside Pebble
// return too.
func TestCompactionFailureFailsTheDatabase(t *testing.T) {
	for _, op := range []string{"create", "write", "sync", "slow-write", "slow-sync"} {
		for _, mode := range []strata.DurabilityMode{strata.DurabilityNone, strata.DurabilityBatched, strata.DurabilityStrict} {
			t.Run(fmt.Sprintf("%s/%v", op, mode), func(t *testing.T) {
				fault := &compactionFault{FS: vfs.NewMem(), op: strings.TrimPrefix(op, "slow-")}
				if fault.op != op {
					fault.delay = 300 * time.Millisecond
				}
				compactionFailure(t, fault, mode)
			})
		}
	}
}

func compactionFailure(t *testing.T, fault *compactionFault, mode strata.DurabilityMode) {
	const writers = 4
	opts := strata.Options{Path: "db", FS: fault, Durability: mode, MemTableSize: strata.MinMemTableSize}
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	val := value.Bytes(make([]byte, 1000))
	fault.armed.Store(true)
	w := startPutWriters(db, run, writers, val, 200000)
	w.requireFailure(t, db, run, val, "compaction")
	fault.armed.Store(false)
	require.NoError(t, w.reopen(t, opts, run, val).Close())
	t.Logf("commits acknowledged before the failure: %v", w.acked)
}
