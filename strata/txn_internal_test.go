package strata

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/internal/testutil"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// A deadline that passes while the commit waits for the run's commit lock
// refuses the commit: validation, under the lock, looks at the context
// first.
func TestTimeoutWhileWaitingForTheCommitLock(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	run := NewRunID()

	held, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		// A commit whose build step holds the run's lock until released.
		_, err := db.commitBuilt(context.Background(), run, func(uint64) ([]mvcc.Write, error) {
			close(held)
			<-release
			return nil, nil
		}, DurabilityNone)
		holder <- err
	}()
	<-held

	tx, err := db.Begin(ctx, run, WithTimeout(20*time.Millisecond))
	require.NoError(t, err)
	defer tx.End()
	require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
	committed := make(chan error, 1)
	go func() { _, err := tx.Commit(); committed <- err }()
	time.Sleep(60 * time.Millisecond) // the deadline passes while it waits
	close(release)
	require.NoError(t, <-holder)
	require.ErrorIs(t, <-committed, context.DeadlineExceeded)
	_, err = db.Get(ctx, run, []byte("k"))
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, int64(1), db.Metrics().Transactions.Aborted)
}

// backoff doubles from BaseDelay up to MaxDelay and draws uniformly below
// that bound (full jitter).
func TestBackoffBounds(t *testing.T) {
	c := RetryConfig{MaxRetries: 50, BaseDelay: time.Millisecond, MaxDelay: 40 * time.Millisecond}
	for attempt, bound := range []time.Duration{1, 2, 4, 8, 16, 32, 40, 40, 40} {
		bound *= time.Millisecond
		var top time.Duration
		for range 2000 {
			d := backoff(c, attempt)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, bound, "attempt %d", attempt)
			top = max(top, d)
		}
		require.Greater(t, top, bound/2, "attempt %d: draws spread up to the bound", attempt)
	}
	require.LessOrEqual(t, backoff(c, 1000), c.MaxDelay, "no overflow on a huge attempt number")

	// Delays up to math.MaxInt64 are valid: the doubling never wraps (to
	// a negative or a smaller delay), and the draw takes the whole range.
	huge := RetryConfig{MaxRetries: 3, BaseDelay: math.MaxInt64 / 3, MaxDelay: math.MaxInt64}
	require.NotPanics(t, func() {
		for attempt := range 70 {
			require.GreaterOrEqual(t, backoff(huge, attempt), time.Duration(0))
		}
		huge.BaseDelay = math.MaxInt64
		require.GreaterOrEqual(t, backoff(huge, 0), time.Duration(0))
	})
	// Uncapped doubling: the bound at attempt 1 is 2*BaseDelay, not a
	// wrapped product.
	wide := RetryConfig{MaxRetries: 3, BaseDelay: math.MaxInt64 / 4, MaxDelay: math.MaxInt64}
	var top time.Duration
	for range 200 {
		top = max(top, backoff(wide, 1))
	}
	require.Greater(t, top, wide.BaseDelay, "attempt 1 draws up to twice BaseDelay")
	require.LessOrEqual(t, top, 2*wide.BaseDelay)
	d := RetryConfig{}.withDefaults()
	require.Equal(t, RetryConfig{MaxRetries: DefaultMaxRetries, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}, d)
}

// The write set finds every key whether it is scanned or indexed, keeps
// the order of first writes, and a rewrite replaces in place.
func TestWriteSet(t *testing.T) {
	var s writeSet
	key := func(i int) []byte { return fmt.Appendf(nil, "\x01k%d", i) }
	for n := range 3 * writeSetScan {
		require.Equal(t, -1, s.find(key(n)))
		s.add(string(key(n)), txnWrite{payload: []byte{byte(n)}})
		require.Equal(t, n+1, s.len())
		require.Equal(t, n >= writeSetScan, s.indexed, "indexed once past %d keys", writeSetScan)
		for i := 0; i <= n; i++ {
			w, ok := s.get(key(i))
			require.True(t, ok)
			require.Equal(t, []byte{byte(i)}, w.payload)
			require.Equal(t, string(key(i)), s.list[i].key, "first-write order")
		}
		require.False(t, s.has(key(n+1)))
	}
	s.replace(s.find(key(3)), txnWrite{kind: keyenc.KindTombstone})
	w, _ := s.get(key(3))
	require.Equal(t, keyenc.KindTombstone, w.kind)
	require.Equal(t, 3*writeSetScan, s.len())
	s.reset()
	require.Zero(t, s.len())
	require.False(t, s.indexed)
	require.False(t, s.has(key(0)))
	// Reused: a small set scans again, a large one indexes its own keys only.
	s.add(string(key(100)), txnWrite{})
	require.False(t, s.indexed)
	require.True(t, s.has(key(100)))
	for n := range writeSetScan {
		s.add(string(key(200+n)), txnWrite{})
	}
	require.True(t, s.indexed)
	require.True(t, s.has(key(100)))
	require.False(t, s.has(key(3)), "nothing of the earlier use is left")
}

// blockedWAL is a Strict database on a MemFS whose WAL syncs wait, once
// block is called, until release: a commit is then applied (and checked
// against) but not visible. release(true) makes the waiting sync fail.
type blockedWAL struct {
	db       *Database
	blocking atomic.Bool
	failing  atomic.Bool
	gate     chan struct{}
	once     sync.Once
}

func openBlockedWAL(t *testing.T) *blockedWAL {
	b := &blockedWAL{gate: make(chan struct{})}
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if b.blocking.Load() && strings.HasSuffix(op.Path, ".log") {
				<-b.gate
				if b.failing.Load() {
					return errorfs.ErrInjected
				}
			}
		}
		return nil
	}))
	db, err := OpenWith(Options{Path: "db", FS: fs, Durability: DurabilityStrict})
	require.NoError(t, err)
	b.db = db
	t.Cleanup(func() { b.release(false); _ = db.Close() }) // also when a check failed early
	return b
}

func (b *blockedWAL) block() { b.blocking.Store(true) }

func (b *blockedWAL) release(fail bool) {
	b.once.Do(func() {
		b.failing.Store(fail)
		close(b.gate)
	})
}

// A commit whose deadline passes while it waits to be sequenced behind
// another run's commit (which holds the sequencing lock while Pebble
// applies it) is refused and writes nothing: its validation, under its own
// run's lock, passed in time, but it would get a version after the
// deadline. (Found by a black-box audit: behind 16 MiB commits of another
// run, commits with a 2 ms timeout got versions up to 600 ms late.)
// Direct operations alike: their context bounds their commit.
func TestCommitRefusedWhenItsDeadlinePassesBehindAnotherRun(t *testing.T) {
	const timeout = 20 * time.Millisecond
	smalls := map[string]func(db *Database, run RunID) (uint64, error){
		"transaction": func(db *Database, run RunID) (uint64, error) {
			return db.TransactionWithVersion(context.Background(), run, func(tx *Txn) error {
				return tx.Put([]byte("small"), value.Int(1))
			}, WithTimeout(timeout))
		},
		"put": func(db *Database, run RunID) (uint64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return db.Put(ctx, run, []byte("small"), value.Int(1))
		},
	}
	for name, small := range smalls {
		t.Run(name, func(t *testing.T) {
			// An attempt where the small commit is sequenced before the
			// big one (the big one had not reached Pebble yet) shows
			// nothing: try again.
			for attempt := 0; ; attempt++ {
				require.Less(t, attempt, 10, "the small commit never waited behind the big one")
				if deadlineBehindAnotherRun(t, timeout, small) {
					return
				}
			}
		})
	}
}

// deadlineBehindAnotherRun runs one attempt of the test above, and reports
// whether the small commit was sequenced after the big one began.
func deadlineBehindAnotherRun(t *testing.T, timeout time.Duration, small func(*Database, RunID) (uint64, error)) bool {
	b := openBlockedWAL(t)
	db := b.db
	ctx := context.Background()
	runA, runB := NewRunID(), NewRunID()
	b.block()
	// With the WAL's fsync blocked, a commit larger than Pebble's WAL
	// buffers waits inside Pebble as it is applied, under the lock.
	type result struct {
		v   uint64
		err error
	}
	big := make(chan result, 1)
	go func() {
		v, err := db.TransactionWithVersion(ctx, runA, func(tx *Txn) error {
			for i := range 64 {
				if err := tx.Put(fmt.Appendf(nil, "big-%02d", i), value.Bytes(make([]byte, 64<<10))); err != nil {
					return err
				}
			}
			return nil
		})
		big <- result{v, err}
	}()
	time.Sleep(20 * time.Millisecond) // the big commit reaches Pebble and blocks there

	smallDone := make(chan result, 1)
	go func() {
		v, err := small(db, runB)
		smallDone <- result{v, err}
	}()
	time.Sleep(3 * timeout) // the deadline passes while it waits
	b.release(false)
	bigRes, smallRes := testutil.WaitFor(t, big), testutil.WaitFor(t, smallDone)
	require.NoError(t, bigRes.err)
	if smallRes.err == nil && smallRes.v < bigRes.v {
		return false // sequenced first, in time
	}
	require.ErrorIs(t, smallRes.err, context.DeadlineExceeded, "a commit sequenced after its deadline (version %d, after %d)", smallRes.v, bigRes.v)
	_, err := db.Get(ctx, runB, []byte("small"))
	require.ErrorIs(t, err, ErrNotFound, "the refused commit wrote nothing")
	_, err = db.Put(ctx, runB, []byte("small"), value.Int(2))
	require.NoError(t, err)
	return true
}

// A commit refused by its check returns only once what it was refused for
// is visible, so that a read after it agrees with the refusal and a retry
// does not meet the same cause again (in Strict mode a commit is applied,
// and checked against, before its fsync makes it visible). If that fsync
// fails, the refused call returns the failure instead.
func TestRefusalReturnsOnceItsCauseIsVisible(t *testing.T) {
	ctx := context.Background()
	putTwo := func(db *Database, run RunID, key []byte) error {
		_, err := db.Put(ctx, run, key, value.Int(2))
		return err
	}
	requireSeen := func(t *testing.T, db *Database, run RunID, key []byte, before Versioned) {
		t.Helper()
		after, err := db.Get(ctx, run, key)
		require.NoError(t, err)
		require.Greater(t, after.Version, before.Version, "a read after the refusal sees the commit it was refused for")
	}
	for _, tc := range []struct {
		name     string
		failSync bool
		first    func(db *Database, run RunID, key []byte) error // applied, its fsync blocked
		check    func(t *testing.T, db *Database, run RunID, key []byte, before Versioned)
	}{{
		name:  "a CAS conflict",
		first: putTwo,
		check: func(t *testing.T, db *Database, run RunID, key []byte, before Versioned) {
			_, err := db.CAS(ctx, run, key, before.Version, value.Int(3))
			require.ErrorIs(t, err, ErrConflict)
			requireSeen(t, db, run, key, before)
		},
	}, {
		name:  "a transaction conflict",
		first: putTwo,
		check: func(t *testing.T, db *Database, run RunID, key []byte, before Versioned) {
			tx, err := db.Begin(ctx, run)
			require.NoError(t, err)
			defer tx.End()
			got, err := tx.Get(key)
			require.NoError(t, err)
			require.Equal(t, before.Version, got.Version)
			require.NoError(t, tx.Put(key, value.Int(3)))
			_, err = tx.Commit()
			require.ErrorIs(t, err, ErrConflict)
			requireSeen(t, db, run, key, before)
		},
	}, {
		name:  "a Delete of a key another Delete removed",
		first: func(db *Database, run RunID, key []byte) error { _, err := db.Delete(ctx, run, key); return err },
		check: func(t *testing.T, db *Database, run RunID, key []byte, _ Versioned) {
			existed, err := db.Delete(ctx, run, key)
			require.NoError(t, err)
			require.False(t, existed)
			_, err = db.Get(ctx, run, key)
			require.ErrorIs(t, err, ErrNotFound, "a read after the Delete agrees that the key is gone")
		},
	}, {
		name:     "a conflict with a commit whose fsync fails",
		failSync: true,
		first:    putTwo,
		check: func(t *testing.T, db *Database, run RunID, key []byte, before Versioned) {
			_, err := db.CAS(ctx, run, key, before.Version, value.Int(3))
			require.ErrorIs(t, err, ErrFailed, "the conflict rested on a commit that did not happen")
			require.NotErrorIs(t, err, ErrConflict)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBlockedWAL(t)
			db, run, key := b.db, NewRunID(), []byte("x")
			v1, err := db.Put(ctx, run, key, value.Int(1))
			require.NoError(t, err)

			b.block()
			first := make(chan error, 1)
			go func() { first <- tc.first(db, run, key) }()
			require.Eventually(t, func() bool { return db.store.Applied() > v1 }, 10*time.Second, time.Millisecond)
			before, err := db.Get(ctx, run, key)
			require.NoError(t, err)
			require.Equal(t, v1, before.Version, "the first commit is applied, not visible: its fsync waits")

			// Most likely the refused call is waiting by then; if not, it
			// refuses after the release, and the checks hold all the same.
			time.AfterFunc(50*time.Millisecond, func() { b.release(tc.failSync) })
			tc.check(t, db, run, key, before)
			err = <-first
			if tc.failSync {
				require.ErrorIs(t, err, ErrFailed)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// A prefix listed again in one transaction, or one under a prefix it listed
// already, is checked once at commit: the snapshot is the same, so the
// first list's check covers it. A phantom under it still aborts.
func TestRepeatedListIsCheckedOnce(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	run := NewRunID()
	for _, k := range []string{"k1", "k2", "j1"} {
		_, err := db.Put(ctx, run, []byte(k), value.Int(1))
		require.NoError(t, err)
	}
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	for _, p := range []string{"k", "k", "k", "k1", "k"} {
		_, err := tx.List([]byte(p))
		require.NoError(t, err)
	}
	require.Len(t, tx.scans, 1)
	_, err = tx.List([]byte("j"))
	require.NoError(t, err)
	_, err = tx.StateList("k") // another tag
	require.NoError(t, err)
	require.Len(t, tx.scans, 3)

	require.NoError(t, tx.Put([]byte("w"), value.Int(1)))
	_, err = db.Put(ctx, run, []byte("k15"), value.Int(1)) // a phantom under "k1" and "k"
	require.NoError(t, err)
	_, err = tx.Commit()
	require.ErrorIs(t, err, ErrConflict)
}

// lateTimerCtx has a deadline whose timer has not fired: Err stays nil, as
// it does for a while on a busy machine after the deadline passed.
type lateTimerCtx struct {
	context.Context
	deadline time.Time
}

func (c lateTimerCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Operations and the commit of a transaction fail once its deadline has
// passed, even before the context's timer says so.
func TestDeadlinePassedBeforeItsTimerFired(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := NewRunID()
	ctx := lateTimerCtx{context.Background(), time.Now().Add(50 * time.Millisecond)}
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
	time.Sleep(time.Until(ctx.deadline))
	require.NoError(t, ctx.Err(), "the timer has not fired")
	require.Equal(t, context.DeadlineExceeded, tx.Put([]byte("k2"), value.Int(2)))
	_, err = tx.Commit()
	require.Equal(t, context.DeadlineExceeded, err)
	_, err = db.Get(context.Background(), run, []byte("k"))
	require.ErrorIs(t, err, ErrNotFound, "nothing was committed")

	// The closure API and direct calls alike.
	past := lateTimerCtx{context.Background(), time.Now()}
	require.Equal(t, context.DeadlineExceeded, db.Transaction(past, run, func(tx *Txn) error { return tx.Put([]byte("k"), value.Int(1)) }))
	_, err = db.Put(past, run, []byte("k"), value.Int(1))
	require.Equal(t, context.DeadlineExceeded, err)
}

// expiringCtx is a context whose deadline passes at an exact point: its Err
// turns into context.DeadlineExceeded after limit calls (never while limit
// is 0). It lets a test end a long operation halfway, whatever the
// machine's speed.
type expiringCtx struct {
	context.Context
	calls, limit atomic.Int64
}

func (c *expiringCtx) Err() error {
	if n := c.calls.Add(1); c.limit.Load() > 0 && n > c.limit.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// expireAfter makes the deadline pass n calls of Err from now.
func (c *expiringCtx) expireAfter(n int64) { c.limit.Store(c.calls.Load() + n) }

// beginOnPrefix opens an ephemeral database, commits 1000 keys p/0000,
// p/0001, ... into a run, and begins a transaction there with an
// expiringCtx.
func beginOnPrefix(t *testing.T) (*Database, RunID, *expiringCtx, *Txn) {
	t.Helper()
	db, err := OpenEphemeral()
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	run := NewRunID()
	require.NoError(t, db.Transaction(context.Background(), run, func(tx *Txn) error {
		for i := range 1000 {
			if err := tx.Put(fmt.Appendf(nil, "p/%04d", i), value.Int(int64(i))); err != nil {
				return err
			}
		}
		return nil
	}))
	ctx := &expiringCtx{Context: context.Background()}
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	t.Cleanup(tx.End)
	return db, run, ctx, tx
}

// A List whose deadline passes while it scans ends with the deadline's
// error, not with the keys it had read so far, and the transaction can no
// longer commit.
func TestTxnListEndsAtTheDeadline(t *testing.T) {
	_, _, ctx, tx := beginOnPrefix(t)
	ctx.expireAfter(100) // a tenth of the way through the keys
	keys, err := tx.List([]byte("p/"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, keys)
	_, err = tx.Commit()
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// A List whose deadline passes after its scan, while it merges the
// transaction's own writes into the keys it found and sorts them, fails
// too: no operation succeeds after the deadline. (Found by a black-box
// audit: a List over 300,000 buffered writes returned its keys well after
// the deadline.)
func TestTxnListOfOwnWritesEndsAtTheDeadline(t *testing.T) {
	for _, writes := range []int{500, 3000} { // merged at once; merged in several steps
		_, _, ctx, tx := beginOnPrefix(t)
		for i := range writes {
			require.NoError(t, tx.Put(fmt.Appendf(nil, "q/%05d", i), value.Int(int64(i))))
		}
		ctx.expireAfter(1) // the List's first look at the context passes
		keys, err := tx.List([]byte("q/"))
		require.ErrorIs(t, err, context.DeadlineExceeded, "%d writes", writes)
		require.Nil(t, keys)
	}
}

// A commit whose deadline passes while it checks a listed prefix under the
// run's lock is refused, and writes nothing.
func TestCommitValidationEndsAtTheDeadline(t *testing.T) {
	db, run, ctx, tx := beginOnPrefix(t)
	keys, err := tx.List([]byte("p/"))
	require.NoError(t, err)
	require.Len(t, keys, 1000)
	require.NoError(t, tx.Put([]byte("w"), value.Int(1)))
	// A commit of the run after the snapshot, outside the prefix: the
	// commit must check the listed prefix again.
	_, err = db.Put(context.Background(), run, []byte("other"), value.Int(1))
	require.NoError(t, err)

	ctx.expireAfter(50) // the commit's first checks pass; its scan does not
	_, err = tx.Commit()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = db.Get(context.Background(), run, []byte("w"))
	require.ErrorIs(t, err, ErrNotFound, "the refused commit wrote nothing")
}

// The deadline is the commit's to meet until it is applied. A Strict commit
// applied before its deadline, whose fsync then ends after it, succeeds: it
// happened, and reporting context.DeadlineExceeded would say it did not.
func TestCommitAppliedBeforeTheDeadlineSucceeds(t *testing.T) {
	b := openBlockedWAL(t)
	db, run := b.db, NewRunID()
	b.block()
	const timeout = 20 * time.Millisecond
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- db.Transaction(context.Background(), run, func(tx *Txn) error {
			return tx.Put([]byte("k"), value.Int(1))
		}, WithTimeout(timeout))
	}()
	require.Eventually(t, func() bool { return db.store.Applied() > db.CurrentVersion() }, 10*time.Second, time.Millisecond,
		"the commit is applied; its fsync waits")
	time.Sleep(time.Until(start.Add(2 * timeout))) // past the deadline
	b.release(false)
	require.NoError(t, <-done)
	got, err := db.Get(context.Background(), run, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, db.DurableVersion(), got.Version, "durable, as Strict promised")
}

// A direct operation whose deadline passes while it waits for its run's
// lock is refused with the context's error, also when the check it makes
// there would have answered without writing (a Delete of an absent key, a
// CAS mismatch): the context is looked at first. (Found by a black-box
// audit: both answered after their deadline behind a large commit.)
func TestDirectRefusalsLookAtTheDeadlineFirst(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := NewRunID()
	v, err := db.Put(context.Background(), run, []byte("k"), value.Int(1))
	require.NoError(t, err)
	ctx := &expiringCtx{Context: context.Background()}
	ctx.expireAfter(1) // the call's first look (as it begins) passes; the one under the lock does not
	_, err = db.Delete(ctx, run, []byte("absent"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	ctx.expireAfter(1)
	_, err = db.CAS(ctx, run, []byte("k"), v+1, value.Int(2))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, ErrConflict)
	require.Equal(t, v, db.CurrentVersion(), "nothing was written")
}

// Long reads end at the deadline, and return no result with the error: a
// transaction's event range, the direct event ranges, a verification (no
// verdict), a direct List over deleted keys (which the scan steps over
// without a look at the deadline), and a GC pass with nothing to remove.
// (Found by a black-box audit: each answered after its deadline, the event
// ranges and the verification with a whole result.)
func TestLongReadsEndAtTheDeadline(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	bg := context.Background()
	run := NewRunID()
	for i := range 1000 {
		_, err := db.AppendEvent(bg, run, "e", value.Object(map[string]Value{"i": value.Int(int64(i))}))
		require.NoError(t, err)
		_, err = db.Put(bg, run, fmt.Appendf(nil, "d/%04d", i), value.Int(1))
		require.NoError(t, err)
		_, err = db.Delete(bg, run, fmt.Appendf(nil, "d/%04d", i))
		require.NoError(t, err)
	}
	gcRun := NewRunID() // keys of one version each: a pass removes nothing
	for i := range 1000 {
		_, err := db.Put(bg, gcRun, fmt.Appendf(nil, "g/%04d", i), value.Int(1))
		require.NoError(t, err)
	}
	require.NoError(t, db.SetRetention(bg, gcRun, KeepLast(5)))
	_, err = db.Put(bg, run, []byte("h"), value.Int(1))
	require.NoError(t, err)

	ctx := &expiringCtx{Context: bg}
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	defer tx.End()
	ctx.expireAfter(3) // the range's first looks pass, then its scan meets the deadline
	evs, err := tx.EventRange(0, 1000)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, evs)

	// Each read is cut short at its second look at the deadline (the
	// first is as it begins), and the event scans also halfway; History
	// and GetMany of one key at their last look, after the read.
	scan := []int64{1, 3}
	for name, r := range map[string]struct {
		read  func(context.Context) (any, error)
		after []int64
	}{
		"EventRange":        {func(c context.Context) (any, error) { return db.EventRange(c, run, 0, 1000) }, scan},
		"EventRangeReverse": {func(c context.Context) (any, error) { return db.EventRangeReverse(c, run, 0, 1000) }, scan},
		"EventsByType":      {func(c context.Context) (any, error) { return db.EventsByType(c, run, "e") }, scan},
		"VerifyEvents":      {func(c context.Context) (any, error) { return db.VerifyEvents(c, run, nil) }, scan},
		"List":              {func(c context.Context) (any, error) { return db.List(c, run, []byte("d/"), ListOptions{}) }, []int64{1}},
		"GC":                {func(c context.Context) (any, error) { return db.GC(c, gcRun) }, []int64{1}},
		"History":           {func(c context.Context) (any, error) { return db.History(c, run, []byte("h"), HistoryOptions{}) }, []int64{2}},
		"GetMany":           {func(c context.Context) (any, error) { return db.GetMany(c, run, [][]byte{[]byte("h")}) }, []int64{2}},
	} {
		for _, after := range r.after {
			ctx := &expiringCtx{Context: bg}
			ctx.expireAfter(after)
			got, err := r.read(ctx)
			require.ErrorIs(t, err, context.DeadlineExceeded, "%s, deadline after %d looks", name, after)
			switch g := got.(type) {
			case []Event:
				require.Nil(t, g, name)
			case events.Verification:
				require.Zero(t, g, "%s: no verdict", name)
			case ListPage:
				require.Zero(t, g, name)
			case []HistoryEntry:
				require.Nil(t, g, name)
			case []Versioned:
				require.Nil(t, g, name)
			case GCStats:
				require.Zero(t, g.Removed, "%s: nothing to remove", name)
			}
		}
	}
}

// Shutdown's wait ends at its deadline by the clock, as every other call's
// does, also before the context's timer has fired; with nothing in flight
// it stops and syncs whatever its context.
func TestShutdownEndsAtItsDeadlineByTheClock(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := NewRunID()
	tx, err := db.Begin(context.Background(), run) // in flight: Shutdown would wait for it
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- db.Shutdown(lateTimerCtx{context.Background(), time.Now()}) }()
	require.ErrorIs(t, testutil.WaitFor(t, done), context.DeadlineExceeded)
	require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
	_, err = tx.Commit()
	require.NoError(t, err, "a transaction begun before Shutdown runs to its end")

	idle, err := OpenEphemeral()
	require.NoError(t, err)
	defer idle.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, idle.Shutdown(cancelled), "nothing in flight: nothing to wait for")
	_, err = idle.Put(context.Background(), run, []byte("k"), value.Int(1))
	require.ErrorIs(t, err, ErrClosed)
}

// A GC pass waiting for the run's running pass ends at its deadline by the
// clock, also when its context's timer never fires.
func TestGCWaitEndsAtItsDeadlineByTheClock(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := NewRunID()
	rs := db.runs.acquire(run)
	defer rs.release()
	rs.gc <- struct{}{} // a pass of the run is running
	defer func() { <-rs.gc }()
	done := make(chan error, 1)
	go func() {
		_, err := db.GC(lateTimerCtx{context.Background(), time.Now().Add(20 * time.Millisecond)}, run)
		done <- err
	}()
	require.ErrorIs(t, testutil.WaitFor(t, done), context.DeadlineExceeded)
}
