package strata_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

func openTxnDB(t *testing.T) (*strata.Database, strata.RunID) {
	t.Helper()
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db, strata.NewRunID()
}

func begin(t *testing.T, db *strata.Database, run strata.RunID) *strata.Txn {
	t.Helper()
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	t.Cleanup(tx.End)
	return tx
}

func put(t *testing.T, db *strata.Database, run strata.RunID, k string, v int64) uint64 {
	t.Helper()
	ver, err := db.Put(ctx, run, []byte(k), value.Int(v))
	require.NoError(t, err)
	return ver
}

func requireConflict(t *testing.T, err error, keys ...string) {
	t.Helper()
	require.ErrorIs(t, err, strata.ErrConflict)
	var ce *strata.ConflictError
	require.ErrorAs(t, err, &ce)
	var got []string
	for _, k := range ce.Keys {
		got = append(got, string(k))
	}
	require.ElementsMatch(t, keys, got)
}

// The conflict matrix, one test per row.

func TestConflictReadWrite(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "x", 1)
	a := begin(t, db, run)
	_, err := a.Get([]byte("x"))
	require.NoError(t, err)
	put(t, db, run, "x", 2) // a concurrent commit changes what a read
	require.NoError(t, a.Put([]byte("y"), value.Int(1)))
	_, err = a.Commit()
	requireConflict(t, err, "x")
	_, err = db.Get(ctx, run, []byte("y"))
	require.ErrorIs(t, err, strata.ErrNotFound, "a failed commit leaves no trace")
}

func TestConflictFirstCommitterWins(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "x", 1)
	a, b := begin(t, db, run), begin(t, db, run)
	for _, tx := range []*strata.Txn{a, b} {
		_, err := tx.Get([]byte("x"))
		require.NoError(t, err)
		require.NoError(t, tx.Put([]byte("x"), value.Int(2)))
	}
	_, err := a.Commit()
	require.NoError(t, err)
	_, err = b.Commit()
	requireConflict(t, err, "x")
}

func TestBlindWritesBothCommit(t *testing.T) {
	db, run := openTxnDB(t)
	a, b := begin(t, db, run), begin(t, db, run)
	require.NoError(t, a.Put([]byte("x"), value.Int(1)))
	require.NoError(t, b.Put([]byte("x"), value.Int(2)))
	va, err := a.Commit()
	require.NoError(t, err)
	vb, err := b.Commit()
	require.NoError(t, err)
	require.Greater(t, vb, va)
	got, err := db.Get(ctx, run, []byte("x"))
	require.NoError(t, err)
	require.Equal(t, vb, got.Version, "the later commit wins")
}

func TestExactlyOneCASWinner(t *testing.T) {
	db, run := openTxnDB(t)
	v1 := put(t, db, run, "x", 1)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Transaction(ctx, run, func(tx *strata.Txn) error {
				return tx.CAS([]byte("x"), v1, value.Int(int64(i)))
			})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two CAS winners: %d and %d", winner, i)
			winner = i
			continue
		}
		requireConflict(t, err, "x")
	}
	require.NotEqual(t, -1, winner, "no CAS winner")
	got, err := db.Get(ctx, run, []byte("x"))
	require.NoError(t, err)
	require.True(t, value.Equal(value.Int(int64(winner)), got.Value), "the winner's value is stored")
}

func TestCASExpectingAbsentFailsOnExistingKey(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "x", 1)
	err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
		return tx.CAS([]byte("x"), 0, value.Int(2))
	})
	requireConflict(t, err, "x")
}

// Several CAS calls on one key in a transaction each add an expectation,
// and the commit needs all of them: a later CAS whose expectation holds
// does not replace an earlier one that does not (in either order), while
// repeating the same expectation is no conflict.
func TestEveryCASExpectationOnAKeyMustHold(t *testing.T) {
	db, run := openTxnDB(t)
	v1 := put(t, db, run, "x", 1)
	for _, expected := range [][2]uint64{{0, v1}, {v1, 0}, {v1 + 1, v1}} {
		err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
			require.NoError(t, tx.CAS([]byte("x"), expected[0], value.Int(2)))
			return tx.CAS([]byte("x"), expected[1], value.Int(3))
		})
		requireConflict(t, err, "x")
		got, err := db.Get(ctx, run, []byte("x"))
		require.NoError(t, err)
		require.Equal(t, v1, got.Version, "expectations %v: nothing written", expected)
	}
	v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
		require.NoError(t, tx.CAS([]byte("x"), v1, value.Int(2)))
		return tx.CAS([]byte("x"), v1, value.Int(3))
	})
	require.NoError(t, err)
	got, err := db.Get(ctx, run, []byte("x"))
	require.NoError(t, err)
	require.Equal(t, v, got.Version)
	require.True(t, value.Equal(value.Int(3), got.Value), "the last CAS's value is written")
}

func TestReadOnlyNeverConflicts(t *testing.T) {
	var fsyncs atomic.Int64 // every fsync of any file, counted by the FS
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			fsyncs.Add(1)
		}
		return nil
	}))
	db, err := strata.OpenWith(strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityStrict})
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	put(t, db, run, "x", 1)
	a := begin(t, db, run)
	got, err := a.Get([]byte("x"))
	require.NoError(t, err)
	put(t, db, run, "x", 2)
	again, err := a.Get([]byte("x"))
	require.NoError(t, err)
	require.Equal(t, got.Version, again.Version, "repeatable read")
	_, err = a.List(nil)
	require.NoError(t, err)
	before, wal, syncs := db.CurrentVersion(), db.Metrics().Storage.WALBytesWritten, fsyncs.Load()
	v, err := a.Commit()
	require.NoError(t, err)
	require.Zero(t, v, "a read-only transaction allocates no version")
	require.Equal(t, before, db.CurrentVersion())
	require.Equal(t, wal, db.Metrics().Storage.WALBytesWritten, "and writes nothing")
	require.Equal(t, syncs, fsyncs.Load(), "and never syncs")

	// The counter does see a Strict commit's fsync.
	put(t, db, run, "y", 1)
	require.Greater(t, fsyncs.Load(), syncs)
}

func TestWriteSkewAborts(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "alice", 1) // invariant: at least one on call
	put(t, db, run, "bob", 1)
	a, b := begin(t, db, run), begin(t, db, run)
	for _, c := range []struct {
		tx       *strata.Txn
		me, peer string
	}{{a, "alice", "bob"}, {b, "bob", "alice"}} {
		_, err := c.tx.Get([]byte(c.me))
		require.NoError(t, err)
		_, err = c.tx.Get([]byte(c.peer))
		require.NoError(t, err)
		require.NoError(t, c.tx.Put([]byte(c.me), value.Int(0))) // go off call
	}
	_, err := a.Commit()
	require.NoError(t, err)
	_, err = b.Commit()
	requireConflict(t, err, "alice") // b read alice, which a changed
}

func TestPhantomInsertIntoListedRangeAborts(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "order/1", 1)
	a := begin(t, db, run)
	keys, err := a.List([]byte("order/"))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.NoError(t, a.Put([]byte("count"), value.Int(int64(len(keys)))))
	put(t, db, run, "order/2", 1) // a phantom
	_, err = a.Commit()
	requireConflict(t, err, "order/2")

	// A key outside the listed prefix does not conflict.
	b := begin(t, db, run)
	_, err = b.List([]byte("order/"))
	require.NoError(t, err)
	require.NoError(t, b.Put([]byte("count"), value.Int(2)))
	put(t, db, run, "other", 1)
	_, err = b.Commit()
	require.NoError(t, err)
}

func TestDeleteAfterReadConflicts(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "x", 1)
	a := begin(t, db, run)
	_, err := a.Get([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, a.Put([]byte("y"), value.Int(1)))
	existed, err := db.Delete(ctx, run, []byte("x"))
	require.NoError(t, err)
	require.True(t, existed)
	_, err = a.Commit()
	requireConflict(t, err, "x")
}

func TestMissingKeyReadThenCreatedConflicts(t *testing.T) {
	db, run := openTxnDB(t)
	a := begin(t, db, run)
	_, err := a.Get([]byte("x"))
	require.ErrorIs(t, err, strata.ErrNotFound)
	require.NoError(t, a.Put([]byte("y"), value.Int(1)))
	put(t, db, run, "x", 1)
	_, err = a.Commit()
	requireConflict(t, err, "x")
}

func TestReadYourOwnWrites(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "gone", 1)
	err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
		require.NoError(t, tx.Put([]byte("a"), value.String("new")))
		got, err := tx.Get([]byte("a"))
		require.NoError(t, err)
		require.True(t, value.Equal(value.String("new"), got.Value))
		require.Zero(t, got.Version, "not committed yet")

		existed, err := tx.Delete([]byte("gone"))
		require.NoError(t, err)
		require.True(t, existed)
		_, err = tx.Get([]byte("gone"))
		require.ErrorIs(t, err, strata.ErrNotFound)

		require.NoError(t, tx.CAS([]byte("c"), 0, value.Int(7)))
		got, err = tx.Get([]byte("c"))
		require.NoError(t, err)
		require.True(t, value.Equal(value.Int(7), got.Value))

		keys, err := tx.List(nil)
		require.NoError(t, err)
		require.Equal(t, [][]byte{[]byte("a"), []byte("c")}, keys)
		return nil
	})
	require.NoError(t, err)
	_, err = db.Get(ctx, run, []byte("gone"))
	require.ErrorIs(t, err, strata.ErrNotFound)
}

// A transaction keeps its own copies: changing the slices given to Put, or
// the bytes a Get of an own write returned, changes nothing stored; and a
// value returned inside one transaction stays as it was after later
// transactions reuse the pooled context.
func TestTxnValuesDoNotShareMemory(t *testing.T) {
	db, run := openTxnDB(t)
	key, val := []byte("k"), []byte("original")
	var kept strata.Versioned
	err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
		require.NoError(t, tx.Put(key, value.Bytes(val)))
		key[0], val[0] = 'X', 'X' // the caller reuses its buffers
		got, err := tx.Get([]byte("k"))
		require.NoError(t, err)
		b, _ := got.Value.AsBytes()
		b[1] = 'X' // and scribbles on what it read
		kept, err = tx.Get([]byte("k"))
		return err
	})
	require.NoError(t, err)
	got, err := db.Get(ctx, run, []byte("k"))
	require.NoError(t, err)
	require.True(t, value.Equal(value.Bytes([]byte("original")), got.Value))
	_, err = db.Get(ctx, run, []byte("X"))
	require.ErrorIs(t, err, strata.ErrNotFound)

	for i := range 100 { // reuse the context many times
		err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
			return tx.Put([]byte("k"), value.Bytes(fmt.Appendf(nil, "overwritten %d", i)))
		})
		require.NoError(t, err)
	}
	require.True(t, value.Equal(value.Bytes([]byte("original")), kept.Value))
}

// Payloads and keys of every size commit intact, whether they fit the
// context's arena, overflow it, or are too large for it.
func TestTxnManyWritesOfMixedSizes(t *testing.T) {
	db, run := openTxnDB(t)
	want := map[string]value.Value{}
	for round := range 3 {
		err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
			for i := range 200 {
				k := fmt.Appendf(nil, "key-%d-%d-%s", round, i, make([]byte, i%50))
				var v value.Value
				switch i % 3 {
				case 0:
					v = value.Bytes(bytes.Repeat([]byte{byte(i)}, i*17))
				case 1:
					v = value.Object(map[string]value.Value{"i": value.Int(int64(i)), "pad": value.String(string(make([]byte, i*9)))})
				default:
					v = value.Int(int64(i))
				}
				require.NoError(t, tx.Put(k, value.String("an earlier value")))
				require.NoError(t, tx.Put(k, v)) // a rewrite
				want[string(k)] = v
			}
			return nil
		})
		require.NoError(t, err)
	}
	for k, v := range want {
		got, err := db.Get(ctx, run, []byte(k))
		require.NoError(t, err)
		require.True(t, value.Equal(v, got.Value), "key %q", k)
	}
}

func TestClosureAbortsOnError(t *testing.T) {
	db, run := openTxnDB(t)
	boom := errors.New("boom")
	err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
		require.NoError(t, tx.Put([]byte("x"), value.Int(1)))
		return boom
	})
	require.ErrorIs(t, err, boom)
	_, err = db.Get(ctx, run, []byte("x"))
	require.ErrorIs(t, err, strata.ErrNotFound)
	m := db.Metrics().Transactions
	require.Equal(t, strata.TxnMetrics{Active: 0, Started: 1, Committed: 0, Aborted: 1}, m)
}

// A panic in the closure ends the transaction, writes nothing, is not
// retried and goes on up the stack; a commit the closure made before it
// stands.
func TestClosurePanicDiscardsTheTransaction(t *testing.T) {
	db, run := openTxnDB(t)
	attempts := 0
	require.PanicsWithValue(t, "boom", func() {
		_ = db.Transaction(ctx, run, func(tx *strata.Txn) error {
			attempts++
			require.NoError(t, tx.Put([]byte("x"), value.Int(1)))
			panic("boom")
		}, strata.WithRetry(strata.RetryConfig{}))
	})
	require.Equal(t, 1, attempts)
	_, err := db.Get(ctx, run, []byte("x"))
	require.ErrorIs(t, err, strata.ErrNotFound)
	require.Equal(t, strata.TxnMetrics{Started: 1, Aborted: 1}, db.Metrics().Transactions)

	require.Panics(t, func() {
		_ = db.Transaction(ctx, run, func(tx *strata.Txn) error {
			require.NoError(t, tx.Put([]byte("y"), value.Int(2)))
			_, err := tx.Commit()
			require.NoError(t, err)
			panic("after the commit")
		})
	})
	got, err := db.Get(ctx, run, []byte("y"))
	require.NoError(t, err)
	require.Equal(t, value.Int(2), got.Value)
	require.Equal(t, strata.TxnMetrics{Started: 2, Committed: 1, Aborted: 1}, db.Metrics().Transactions)

	// Nothing is left open: Shutdown does not wait for either.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, db.Shutdown(sctx))
}

// putIn commits a transaction that puts key, with opts, and returns its
// version.
func putIn(t *testing.T, db *strata.Database, run strata.RunID, key string, opts ...strata.TxnOption) uint64 {
	t.Helper()
	v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
		return tx.Put([]byte(key), value.Int(1))
	}, opts...)
	require.NoError(t, err)
	return v
}

func TestTransactionWithVersionAndDurabilityOverride(t *testing.T) {
	db, err := strata.OpenWithMode(t.TempDir(), strata.DurabilityNone)
	require.NoError(t, err)
	defer db.Close()
	v := putIn(t, db, strata.NewRunID(), "k", strata.WithDurability(strata.DurabilityStrict))
	require.Equal(t, uint64(1), v)
	require.Equal(t, v, db.DurableVersion(), "a Strict override waits for its own fsync")
}

// A weaker override skips the fsync wait; the next Strict commit makes both
// durable (commits reach the WAL in version order).
func TestWeakerDurabilityOverride(t *testing.T) {
	db, err := strata.OpenWithMode(t.TempDir(), strata.DurabilityStrict)
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	v1 := putIn(t, db, run, "a", strata.WithDurability(strata.DurabilityNone))
	require.Less(t, db.DurableVersion(), v1, "a None override does not wait for an fsync")
	v2 := putIn(t, db, run, "b")
	require.Greater(t, v2, v1)
	require.GreaterOrEqual(t, db.DurableVersion(), v2)
}

// A Batched override in a database of another mode is made durable by a
// background sync within the sync interval, as in a Batched database.
func TestBatchedDurabilityOverride(t *testing.T) {
	db, err := strata.OpenWith(strata.Options{Path: t.TempDir(), Durability: strata.DurabilityNone, SyncInterval: time.Millisecond})
	require.NoError(t, err)
	defer db.Close()
	v := putIn(t, db, strata.NewRunID(), "a", strata.WithDurability(strata.DurabilityBatched))
	require.Eventually(t, func() bool { return db.DurableVersion() >= v }, 10*time.Second, time.Millisecond,
		"durable within the interval, not only at the next Flush")
}

// Options are checked: bad values fail with ErrInvalidOptions instead of
// being ignored or panicking.
func TestTxnOptionsAreValidated(t *testing.T) {
	db, run := openTxnDB(t)
	noop := func(*strata.Txn) error { return nil }
	for name, opt := range map[string]strata.TxnOption{
		"zero timeout":        strata.WithTimeout(0),
		"negative timeout":    strata.WithTimeout(-time.Second),
		"negative retries":    strata.WithRetry(strata.RetryConfig{MaxRetries: -1}),
		"negative base delay": strata.WithRetry(strata.RetryConfig{BaseDelay: -1}),
		"negative max delay":  strata.WithRetry(strata.RetryConfig{MaxDelay: -time.Millisecond}),
		"unknown durability":  strata.WithDurability(strata.DurabilityMode(99)),
		"nil option":          nil,
	} {
		require.ErrorIs(t, db.Transaction(ctx, run, noop, opt), strata.ErrInvalidOptions, name)
		_, err := db.Begin(ctx, run, opt)
		require.ErrorIs(t, err, strata.ErrInvalidOptions, name)
	}
	_, err := db.Begin(ctx, run, strata.WithRetry(strata.RetryConfig{}))
	require.ErrorIs(t, err, strata.ErrInvalidOptions, "Begin does not retry")
	require.ErrorIs(t, db.Transaction(ctx, run, nil), strata.ErrInvalidOptions, "nil function")
	require.Equal(t, strata.TxnMetrics{}, db.Metrics().Transactions, "no transaction started")
}

// A closure may commit the transaction itself: Transaction then reports
// that commit. Ending it without a commit is an error.
func TestClosureThatCommitsItself(t *testing.T) {
	db, run := openTxnDB(t)
	var inner uint64
	v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
		if err := tx.Put([]byte("k"), value.Int(1)); err != nil {
			return err
		}
		var err error
		inner, err = tx.Commit()
		return err
	})
	require.NoError(t, err)
	require.Equal(t, inner, v)
	require.NotZero(t, v)

	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		if err := tx.Put([]byte("k2"), value.Int(1)); err != nil {
			return err
		}
		tx.End()
		return nil
	})
	require.ErrorIs(t, err, strata.ErrTxnDone)
	_, err = db.Get(ctx, run, []byte("k2"))
	require.ErrorIs(t, err, strata.ErrNotFound)
	require.Equal(t, strata.TxnMetrics{Started: 2, Committed: 1, Aborted: 1}, db.Metrics().Transactions)

	// fn's own Commit fails with a conflict and fn returns nil: the
	// conflict is returned, and WithRetry runs fn again.
	attempts := 0
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		attempts++
		if _, err := tx.Get([]byte("k")); err != nil {
			return err
		}
		if attempts == 1 {
			put(t, db, run, "k", 2)
		}
		if err := tx.Put([]byte("k"), value.Int(3)); err != nil {
			return err
		}
		_, err := tx.Commit()
		_ = err // ignored: Transaction reports it
		return nil
	}, strata.WithRetry(strata.RetryConfig{BaseDelay: time.Microsecond}))
	require.NoError(t, err)
	require.Equal(t, 2, attempts)

	// fn commits, then fails with a conflict-wrapping error: the error is
	// returned with the version, and the committed attempt is not run again.
	attempts = 0
	nested := fmt.Errorf("a nested failure: %w", strata.ErrConflict)
	v, err = db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
		attempts++
		if err := tx.Put([]byte("once"), value.Int(int64(attempts))); err != nil {
			return err
		}
		if _, err := tx.Commit(); err != nil {
			return err
		}
		return nested
	}, strata.WithRetry(strata.RetryConfig{BaseDelay: time.Microsecond}))
	require.ErrorIs(t, err, nested)
	require.NotZero(t, v)
	require.Equal(t, 1, attempts)
	got, err := db.Get(ctx, run, []byte("once"))
	require.NoError(t, err)
	require.Equal(t, v, got.Version)
}

func TestManualAPIMisuse(t *testing.T) {
	db, run := openTxnDB(t)
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
	_, err = tx.Commit()
	require.NoError(t, err)
	_, err = tx.Commit()
	require.ErrorIs(t, err, strata.ErrTxnDone, "commit twice")
	require.ErrorIs(t, tx.Put([]byte("k"), value.Int(2)), strata.ErrTxnDone, "use after commit")
	tx.End() // no-op after commit

	tx, err = db.Begin(ctx, run)
	require.NoError(t, err)
	tx.End()
	tx.End()
	_, err = tx.Get([]byte("k"))
	require.ErrorIs(t, err, strata.ErrTxnDone, "use after end")
	_, err = tx.Commit()
	require.ErrorIs(t, err, strata.ErrTxnDone)

	_, err = db.Begin(ctx, strata.RunID{})
	require.ErrorIs(t, err, strata.ErrInvalidRunID)
	tx = begin(t, db, run)
	require.ErrorIs(t, tx.Put(nil, value.Int(1)), strata.ErrInvalidKey)
}

func TestTimeoutIsEnforced(t *testing.T) {
	db, run := openTxnDB(t)
	err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
		require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
		time.Sleep(30 * time.Millisecond)
		// After the deadline every operation fails...
		require.ErrorIs(t, tx.Put([]byte("k2"), value.Int(1)), context.DeadlineExceeded)
		return nil
	}, strata.WithTimeout(10*time.Millisecond))
	// ...and the commit is refused.
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = db.Get(ctx, run, []byte("k"))
	require.ErrorIs(t, err, strata.ErrNotFound)

	// The same through Begin.
	tx, err := db.Begin(ctx, run, strata.WithTimeout(10*time.Millisecond))
	require.NoError(t, err)
	defer tx.End()
	require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
	time.Sleep(30 * time.Millisecond)
	require.ErrorIs(t, tx.Put([]byte("k2"), value.Int(1)), context.DeadlineExceeded)
	_, err = tx.Commit()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = db.Get(ctx, run, []byte("k"))
	require.ErrorIs(t, err, strata.ErrNotFound)
}

func TestRetryOnConflictOnly(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "x", 0)
	attempts := 0
	err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
		attempts++
		got, err := tx.Get([]byte("x"))
		if err != nil {
			return err
		}
		if attempts < 3 {
			put(t, db, run, "x", 100) // interfere: this attempt conflicts
		}
		n, _ := got.Value.AsInt()
		return tx.Put([]byte("x"), value.Int(n+1))
	}, strata.WithRetry(strata.RetryConfig{MaxRetries: 5, BaseDelay: time.Millisecond}))
	require.NoError(t, err)
	require.Equal(t, 3, attempts)
	got, err := db.Get(ctx, run, []byte("x"))
	require.NoError(t, err)
	n, _ := got.Value.AsInt()
	require.Equal(t, int64(101), n)

	boom := errors.New("boom")
	attempts = 0
	err = db.Transaction(ctx, run, func(*strata.Txn) error { attempts++; return boom },
		strata.WithRetry(strata.RetryConfig{}))
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, attempts, "only conflicts are retried")

	// Out of retries, the last conflict is returned.
	attempts = 0
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		attempts++
		if _, err := tx.Get([]byte("x")); err != nil {
			return err
		}
		put(t, db, run, "x", 0) // every attempt conflicts
		return tx.Put([]byte("x"), value.Int(1))
	}, strata.WithRetry(strata.RetryConfig{MaxRetries: 2, BaseDelay: time.Microsecond}))
	requireConflict(t, err, "x")
	require.Equal(t, 3, attempts, "the first attempt and 2 retries")
}

// A context that ends before or during a backoff fails the transaction
// with the last conflict joined to the context's error, also when the
// jittered delay is zero (the timer and the context are then both ready).
func TestRetryContextEndsAtBackoff(t *testing.T) {
	db, run := openTxnDB(t)
	for i := range 50 {
		c, cancel := context.WithCancel(ctx)
		attempts := 0
		err := db.Transaction(c, run, func(tx *strata.Txn) error {
			attempts++
			cancel()
			return &strata.ConflictError{Run: run, Reason: "forced"}
		}, strata.WithRetry(strata.RetryConfig{BaseDelay: time.Nanosecond, MaxDelay: time.Nanosecond}))
		require.ErrorIs(t, err, strata.ErrConflict, "try %d", i)
		require.ErrorIs(t, err, context.Canceled, "try %d", i)
		require.Equal(t, 1, attempts, "no attempt after the context ended")
	}
}

// Any positive delays are valid retry settings, math.MaxInt64 ("no cap")
// included: the backoff waits (here until the context ends) instead of
// overflowing.
func TestRetryHugeDelays(t *testing.T) {
	db, run := openTxnDB(t)
	c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	attempts := 0
	err := db.Transaction(c, run, func(tx *strata.Txn) error {
		attempts++
		return &strata.ConflictError{Run: run, Reason: "forced"}
	}, strata.WithRetry(strata.RetryConfig{MaxRetries: 1, BaseDelay: math.MaxInt64, MaxDelay: math.MaxInt64}))
	require.ErrorIs(t, err, strata.ErrConflict)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 1, attempts)
}

func TestTxnTooLarge(t *testing.T) {
	db, run := openTxnDB(t)
	big := value.Bytes(make([]byte, strata.MaxValueSize))
	requireNothingWritten := func() {
		t.Helper()
		for _, k := range []string{"k0", "k3", "k4"} {
			_, err := db.Get(ctx, run, []byte(k))
			require.ErrorIs(t, err, strata.ErrNotFound, "nothing of a transaction that went too large is written")
		}
		n, err := db.EventLen(ctx, run)
		require.NoError(t, err)
		require.Zero(t, n)
	}
	// full begins a transaction whose writes are exactly at the limit.
	full := func() *strata.Txn {
		tx := begin(t, db, run)
		for i := range 3 {
			require.NoError(t, tx.Put(fmt.Appendf(nil, "k%d", i), big))
		}
		rest := strata.MaxTxnSize - 3*(2+strata.MaxValueSize) - 2
		require.NoError(t, tx.Put([]byte("k3"), value.Bytes(make([]byte, rest))), "exactly at the limit")
		return tx
	}

	// The limit counts the keys and values of the writes of every
	// primitive. A refused write leaves the transaction unable to commit:
	// later writes and the commit fail, and nothing is written.
	refusals := map[string]func(tx *strata.Txn) error{
		"put": func(tx *strata.Txn) error { return tx.Put([]byte("k4"), value.Bytes([]byte{1})) },
		"append": func(tx *strata.Txn) error {
			_, err := tx.AppendEvent("e", value.Object(nil))
			return err
		},
		"state": func(tx *strata.Txn) error {
			_, err := tx.StateSet("cell", value.Int(1))
			return err
		},
	}
	for name, refused := range refusals {
		tx := full()
		require.ErrorIs(t, refused(tx), strata.ErrTxnTooLarge, name)
		_, err := tx.Delete([]byte("k0"))
		require.ErrorIs(t, err, strata.ErrTxnTooLarge, "%s: a later write, even one that would shrink the set", name)
		_, err = tx.Get([]byte("k1"))
		require.NoError(t, err, "%s: reads still work", name)
		_, err = tx.Commit()
		require.ErrorIs(t, err, strata.ErrTxnTooLarge, name)
		requireNothingWritten()
	}

	// A rewrite is counted by its new size: a tombstone replacing 16 MiB
	// makes room.
	tx := full()
	_, err := tx.Delete([]byte("k0"))
	require.NoError(t, err)
	require.NoError(t, tx.Put([]byte("k4"), value.Bytes([]byte{1})))
	_, err = tx.StateSet("cell", value.Int(1))
	require.NoError(t, err)
	tx.End()

	// The closure API: a function that ignores the refusal and returns nil
	// still gets the error, and nothing is written.
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		for i := 0; i < 5; i++ {
			_ = tx.Put(fmt.Appendf(nil, "k%d", i), big)
		}
		return nil
	})
	require.ErrorIs(t, err, strata.ErrTxnTooLarge)
	requireNothingWritten()
}

func TestShutdownWaitsForActiveTransaction(t *testing.T) {
	db, err := strata.Open(t.TempDir())
	require.NoError(t, err)
	run := strata.NewRunID()
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, db.Shutdown(short), context.DeadlineExceeded, "an active transaction holds shutdown")
	require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
	v, err := tx.Commit()
	require.NoError(t, err)
	require.NoError(t, db.Shutdown(ctx))
	require.GreaterOrEqual(t, db.DurableVersion(), v)
	require.NoError(t, db.Close())
}

func TestTxnContextsArePooled(t *testing.T) {
	db, run := openTxnDB(t)
	db.WarmupTxns(4)
	require.Equal(t, strata.TxnPoolStats{Pooled: 4, Created: 4}, db.TxnPoolStats())
	db.WarmupTxns(4)
	require.Equal(t, strata.TxnPoolStats{Pooled: 4, Created: 4}, db.TxnPoolStats(), "warm-up fills up to n")
	for i := range 1000 {
		require.NoError(t, db.Transaction(ctx, run, func(tx *strata.Txn) error {
			_, _ = tx.Get([]byte("k"))
			return tx.Put([]byte("k"), value.Int(int64(i)))
		}))
	}
	require.Equal(t, int64(4), db.TxnPoolStats().Created, "the steady state allocates no new context")

	// A stale handle cannot touch the context it gave back.
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	tx.End()
	other := begin(t, db, run)
	require.ErrorIs(t, tx.Put([]byte("x"), value.Int(1)), strata.ErrTxnDone)
	require.NoError(t, other.Put([]byte("y"), value.Int(1)))
	v, err := other.Commit()
	require.NoError(t, err)
	require.NotZero(t, v)
	_, err = db.Get(ctx, run, []byte("x"))
	require.ErrorIs(t, err, strata.ErrNotFound)
}

// A transaction whose entries (writes, reads, CAS expectations, listed
// ranges) passed 4,096 does not give its context back to the pool; one
// with a few does.
func TestLargeTxnContextIsNotPooled(t *testing.T) {
	const n = 4097
	// Each case's add gives the transaction one entry of its kind, numbered i.
	for _, tc := range []struct {
		name string
		add  func(tx *strata.Txn, i int) error
	}{
		{"writes", func(tx *strata.Txn, i int) error { return tx.Put(fmt.Appendf(nil, "w%d", i), value.Int(1)) }},
		{"reads", func(tx *strata.Txn, i int) error { _, err := tx.Exists(fmt.Appendf(nil, "r%d", i)); return err }},
		{"CAS expectations on one key", func(tx *strata.Txn, i int) error { return tx.CAS([]byte("c"), uint64(i+1), value.Int(1)) }},
		{"listed ranges", func(tx *strata.Txn, i int) error { _, err := tx.List(fmt.Appendf(nil, "l%d/", i)); return err }},
	} {
		fill := func(tx *strata.Txn, n int) error {
			for i := range n {
				if err := tc.add(tx, i); err != nil {
					return err
				}
			}
			return nil
		}
		t.Run(tc.name, func(t *testing.T) {
			db, run := openTxnDB(t)
			db.WarmupTxns(1)
			tx := begin(t, db, run)
			require.Equal(t, 0, db.TxnPoolStats().Pooled, "the transaction holds the pooled context")
			require.NoError(t, fill(tx, n))
			tx.End()
			require.Equal(t, strata.TxnPoolStats{Pooled: 0, Created: 1}, db.TxnPoolStats(), "a context past 4,096 entries is dropped")

			tx = begin(t, db, run)
			require.NoError(t, fill(tx, 8))
			tx.End()
			require.Equal(t, strata.TxnPoolStats{Pooled: 1, Created: 2}, db.TxnPoolStats(), "a small transaction's context is kept")
		})
	}
}

// Past a few dozen listed ranges a transaction indexes them; the ranges it
// records and checks stay the same: a list under a recorded range adds
// nothing, and a change in any recorded range, recorded before or after
// the index, conflicts.
func TestManyListedRangesConflict(t *testing.T) {
	for _, changed := range []string{"p05/x", "p05/xy/z", "p39/", "q/1", "s/1"} {
		t.Run(changed, func(t *testing.T) {
			db, run := openTxnDB(t)
			tx := begin(t, db, run)
			for i := range 40 {
				_, err := tx.List(fmt.Appendf(nil, "p%02d/", i))
				require.NoError(t, err)
			}
			_, err := tx.List([]byte("p05/x")) // covered by p05/
			require.NoError(t, err)
			_, err = tx.List([]byte("q/"))
			require.NoError(t, err)
			_, err = tx.StateList("s/")
			require.NoError(t, err)
			require.NoError(t, tx.Put([]byte("out"), value.Int(1)))
			if changed == "s/1" {
				_, err = db.StateSet(ctx, run, changed, value.Int(1))
				require.NoError(t, err)
			} else {
				put(t, db, run, changed, 1)
			}
			_, err = tx.Commit()
			require.ErrorIs(t, err, strata.ErrConflict)
		})
	}
	// Unchanged ranges commit, and a write outside them does not conflict.
	db, run := openTxnDB(t)
	tx := begin(t, db, run)
	for i := range 40 {
		_, err := tx.List(fmt.Appendf(nil, "p%02d/", i))
		require.NoError(t, err)
	}
	require.NoError(t, tx.Put([]byte("out"), value.Int(1)))
	put(t, db, run, "p40/", 1)
	put(t, db, run, "p0", 1)
	_, err := tx.Commit()
	require.NoError(t, err)
}

func TestTxnMetricsRates(t *testing.T) {
	db, run := openTxnDB(t)
	require.Zero(t, db.Metrics().Transactions.AbortRate())
	require.NoError(t, db.Transaction(ctx, run, func(tx *strata.Txn) error { return tx.Put([]byte("k"), value.Int(1)) }))
	_ = db.Transaction(ctx, run, func(*strata.Txn) error { return errors.New("no") })
	m := db.Metrics().Transactions
	require.Equal(t, int64(2), m.Completed())
	require.InDelta(t, 0.5, m.CommitRate(), 1e-9)
	require.InDelta(t, 0.5, m.AbortRate(), 1e-9)
}

// Direct operations are not transactions in the metrics, even those built
// on one internally (state calls, event and state reads).
func TestDirectOperationsAreNotCountedAsTransactions(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.Put(ctx, run, []byte("k"), value.Int(1))
	require.NoError(t, err)
	_, err = db.Get(ctx, run, []byte("k"))
	require.NoError(t, err)
	_, err = db.StateSet(ctx, run, "c", value.Int(1))
	require.NoError(t, err)
	_, err = db.StateCAS(ctx, run, "c", 1, value.Int(2))
	require.NoError(t, err)
	_, err = db.StateTransition(ctx, run, "c", func(s strata.State) (value.Value, error) { return value.Int(3), nil })
	require.NoError(t, err)
	_, err = db.StateRead(ctx, run, "c")
	require.NoError(t, err)
	_, err = db.AppendEvent(ctx, run, "e", value.Object(nil))
	require.NoError(t, err)
	_, err = db.EventLen(ctx, run)
	require.NoError(t, err)
	_, err = db.VerifyEvents(ctx, run, nil)
	require.NoError(t, err)
	require.Equal(t, strata.TxnMetrics{}, db.Metrics().Transactions)
}

// Shutdown racing transactions that are starting: every Begin either fails
// with ErrClosed or its transaction is waited for; none runs after Shutdown
// returned.
func TestShutdownRacingBegin(t *testing.T) {
	for range 20 {
		db, err := strata.OpenWith(strata.Options{Ephemeral: true})
		require.NoError(t, err)
		run := strata.NewRunID()
		var shutdownDone, lateRun atomic.Bool
		ends := make([]error, 8) // each worker's last error: ErrClosed
		var wg sync.WaitGroup
		for g := range ends {
			wg.Go(func() {
				for i := 0; ; i++ {
					err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
						if shutdownDone.Load() {
							lateRun.Store(true)
						}
						return tx.Put(fmt.Appendf(nil, "%d-%d", g, i), value.Int(1))
					})
					if err != nil {
						ends[g] = err
						return
					}
				}
			})
		}
		time.Sleep(time.Millisecond)
		require.NoError(t, db.Shutdown(ctx))
		shutdownDone.Store(true)
		wg.Wait()
		require.False(t, lateRun.Load(), "a transaction ran after Shutdown returned")
		for _, err := range ends {
			require.ErrorIs(t, err, strata.ErrClosed)
		}
		require.Zero(t, db.Metrics().Transactions.Active)
		require.NoError(t, db.Close())
	}
}

// A single-put transaction in the steady state allocates one object: the
// Txn handle (never reused, so that a handle kept past its end fails
// cleanly). Everything else (contexts with their arena for the write-set
// key and the value's copy, commit requests, batches, the commit record) is
// pooled or on the stack.
func TestSinglePutTransactionAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	db, run := openTxnDB(t)
	db.WarmupTxns(1)
	ctx := context.Background()
	key, v := []byte("k"), value.Bytes([]byte("v"))
	put := func(tx *strata.Txn) error { return tx.Put(key, v) }
	n := testing.AllocsPerRun(1000, func() {
		if err := db.Transaction(ctx, run, put); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, n, 1.0)
}

// A key that fails more than one check (read and CAS, read and listed) is
// named once.
func TestConflictNamesEachKeyOnce(t *testing.T) {
	db, run := openTxnDB(t)
	put(t, db, run, "x", 1)
	got, err := db.Get(ctx, run, []byte("x"))
	require.NoError(t, err)

	a := begin(t, db, run)
	_, err = a.Get([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, a.CAS([]byte("x"), got.Version, value.Int(2)))
	b := begin(t, db, run)
	_, err = b.Get([]byte("x"))
	require.NoError(t, err)
	_, err = b.List([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, b.Put([]byte("q"), value.Int(1)))

	put(t, db, run, "x", 3)
	_, err = a.Commit()
	requireConflict(t, err, "x")
	require.NotContains(t, err.Error(), `"x", "x"`)
	_, err = b.Commit()
	requireConflict(t, err, "x")
}
