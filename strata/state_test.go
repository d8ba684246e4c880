package strata_test

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// The acceptance tests of state cells (contract §7): init, read, set, CAS,
// delete and list; counters that are never reused (no ABA), also across a
// reopen; transitions; exactly one winner among concurrent inits and CAS;
// and state writes that join KV writes in one all-or-nothing transaction.
// state_linearizability_test.go checks concurrent histories against a
// sequential model of a cell.

// requireStateConflict asserts that err is a *ConflictError on the state
// cell name and nothing else.
func requireStateConflict(t *testing.T, err error, name string) {
	t.Helper()
	require.ErrorIs(t, err, strata.ErrConflict)
	var ce *strata.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, [][]byte{[]byte(name)}, ce.Keys)
	require.Equal(t, []strata.Primitive{strata.PrimitiveState}, ce.Primitives)
}

// requireState reads the cell name and asserts its value and counter.
func requireState(t *testing.T, db *strata.Database, run strata.RunID, name string, want strata.Value, counter uint64) strata.State {
	t.Helper()
	s, err := db.StateRead(ctx, run, name)
	require.NoError(t, err, "read %q", name)
	require.Equal(t, name, s.Name)
	require.True(t, value.Equal(want, s.Value), "cell %q holds %v, want %v", name, s.Value, want)
	require.Equal(t, counter, s.Counter, "counter of %q", name)
	return s
}

func TestStateInitReadSet(t *testing.T) {
	db, run := openTxnDB(t)

	c, err := db.StateInit(ctx, run, "phase", value.String("plan"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), c, "a new cell starts at counter 1")
	initVersion := db.CurrentVersion()
	require.Positive(t, initVersion)

	s := requireState(t, db, run, "phase", value.String("plan"), 1)
	require.Equal(t, initVersion, s.Version, "the read names the commit that wrote the cell")
	require.False(t, s.Timestamp.IsZero())

	before := db.CurrentVersion()
	_, err = db.StateInit(ctx, run, "phase", value.String("other"))
	require.ErrorIs(t, err, strata.ErrStateExists)
	require.Equal(t, before, db.CurrentVersion(), "a refused init writes nothing")
	requireState(t, db, run, "phase", value.String("plan"), 1)

	c, err = db.StateSet(ctx, run, "phase", value.String("act"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), c, "set increments the counter")
	s2 := requireState(t, db, run, "phase", value.String("act"), 2)
	require.Equal(t, db.CurrentVersion(), s2.Version)
	require.Greater(t, s2.Version, s.Version)
	require.False(t, s2.Timestamp.Before(s.Timestamp))

	c, err = db.StateSet(ctx, run, "fresh", value.Int(7))
	require.NoError(t, err)
	require.Equal(t, uint64(1), c, "set creates a missing cell at counter 1")
	requireState(t, db, run, "fresh", value.Int(7), 1)

	// Structured values round-trip exactly.
	obj := value.Object(map[string]strata.Value{
		"steps": value.Array(value.Int(1), value.Float(2.5), value.Null()),
		"raw":   value.Bytes([]byte{0, 1, 2}),
		"ok":    value.Bool(true),
	})
	c, err = db.StateSet(ctx, run, "fresh", obj)
	require.NoError(t, err)
	require.Equal(t, uint64(2), c)
	requireState(t, db, run, "fresh", obj, 2)

	_, err = db.StateRead(ctx, run, "never")
	require.ErrorIs(t, err, strata.ErrNotFound)
}

func TestStateCAS(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.StateInit(ctx, run, "lock", value.String("free"))
	require.NoError(t, err)

	c, err := db.StateCAS(ctx, run, "lock", 1, value.String("held"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), c, "CAS returns the expected counter + 1")
	requireState(t, db, run, "lock", value.String("held"), 2)

	before := db.CurrentVersion()
	for _, stale := range []uint64{0, 1, 3, math.MaxUint64} {
		_, err = db.StateCAS(ctx, run, "lock", stale, value.String("stolen"))
		requireStateConflict(t, err, "lock")
	}
	require.Equal(t, before, db.CurrentVersion(), "a failed CAS writes nothing")
	requireState(t, db, run, "lock", value.String("held"), 2)

	_, err = db.StateCAS(ctx, run, "missing", 0, value.Int(1))
	require.ErrorIs(t, err, strata.ErrNotFound)
	require.NotErrorIs(t, err, strata.ErrConflict)
	_, err = db.StateCAS(ctx, run, "missing", 1, value.Int(1))
	require.ErrorIs(t, err, strata.ErrNotFound)
	_, err = db.StateRead(ctx, run, "missing")
	require.ErrorIs(t, err, strata.ErrNotFound, "a CAS on a missing cell does not create it")
	require.Equal(t, before, db.CurrentVersion())
}

func TestStateDelete(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.StateInit(ctx, run, "tmp", value.Int(1))
	require.NoError(t, err)

	existed, err := db.StateDelete(ctx, run, "tmp")
	require.NoError(t, err)
	require.True(t, existed)
	_, err = db.StateRead(ctx, run, "tmp")
	require.ErrorIs(t, err, strata.ErrNotFound)

	before := db.CurrentVersion()
	existed, err = db.StateDelete(ctx, run, "tmp")
	require.NoError(t, err)
	require.False(t, existed, "a deleted cell does not exist")
	existed, err = db.StateDelete(ctx, run, "never")
	require.NoError(t, err)
	require.False(t, existed)
	require.Equal(t, before, db.CurrentVersion(), "deleting an absent cell writes nothing")

	_, err = db.StateCAS(ctx, run, "tmp", 1, value.Int(2))
	require.ErrorIs(t, err, strata.ErrNotFound, "CAS on a deleted cell, even with its last counter")
	require.NotErrorIs(t, err, strata.ErrConflict)
}

func TestStateList(t *testing.T) {
	db, run := openTxnDB(t)
	other := strata.NewRunID()
	for _, n := range []string{"job/3", "job/1", "job/2", "jobs", "other"} {
		_, err := db.StateInit(ctx, run, n, value.String(n))
		require.NoError(t, err)
	}
	_, err := db.StateInit(ctx, other, "job/9", value.Int(9))
	require.NoError(t, err)
	_, err = db.Put(ctx, run, []byte("job/kv"), value.Int(0))
	require.NoError(t, err)
	existed, err := db.StateDelete(ctx, run, "job/2")
	require.NoError(t, err)
	require.True(t, existed)

	list := func(run strata.RunID, prefix string) []string {
		t.Helper()
		names, err := db.StateList(ctx, run, prefix)
		require.NoError(t, err)
		return names
	}
	require.Equal(t, []string{"job/1", "job/3"}, list(run, "job/"),
		"deleted cells, other runs and KV keys are not listed")
	require.Equal(t, []string{"job/1", "job/3", "jobs"}, list(run, "job"))
	require.Equal(t, []string{"job/1", "job/3", "jobs", "other"}, list(run, ""))
	require.Equal(t, []string{"job/9"}, list(other, ""))
	require.Empty(t, list(run, "nope"))
	require.Empty(t, list(strata.NewRunID(), ""))

	// A re-initialised cell is listed again.
	c, err := db.StateInit(ctx, run, "job/2", value.Null())
	require.NoError(t, err)
	require.Equal(t, uint64(2), c)
	require.Equal(t, []string{"job/1", "job/2", "job/3"}, list(run, "job/"))

	_, err = db.StateList(ctx, strata.RunID{}, "")
	require.ErrorIs(t, err, strata.ErrInvalidRunID)
}

func TestStateBadInputsAreTypedAndWriteNothing(t *testing.T) {
	db, run := openTxnDB(t)
	nan := value.Float(math.NaN())
	inf := value.Float(math.Inf(-1))
	nestedNaN := value.Array(value.Int(1), value.Object(map[string]strata.Value{"x": nan}))
	long := strings.Repeat("n", strata.MaxKeySize+1)
	badUTF8 := "bad\xff"
	transition := func(s strata.State) (strata.Value, error) { return s.Value, nil }

	type op struct {
		name string
		do   func(run strata.RunID, name string, v strata.Value) error
	}
	ops := []op{
		{"init", func(r strata.RunID, n string, v strata.Value) error { _, err := db.StateInit(ctx, r, n, v); return err }},
		{"set", func(r strata.RunID, n string, v strata.Value) error { _, err := db.StateSet(ctx, r, n, v); return err }},
		{"cas", func(r strata.RunID, n string, v strata.Value) error {
			_, err := db.StateCAS(ctx, r, n, 1, v)
			return err
		}},
		{"read", func(r strata.RunID, n string, _ strata.Value) error { _, err := db.StateRead(ctx, r, n); return err }},
		{"delete", func(r strata.RunID, n string, _ strata.Value) error { _, err := db.StateDelete(ctx, r, n); return err }},
		{"transition", func(r strata.RunID, n string, _ strata.Value) error {
			_, err := db.StateTransition(ctx, r, n, transition)
			return err
		}},
	}
	for _, o := range ops {
		for _, n := range []string{"", long, badUTF8} {
			require.ErrorIs(t, o.do(run, n, value.Int(1)), strata.ErrInvalidKey, "%s %q", o.name, n)
		}
		require.ErrorIs(t, o.do(strata.RunID{}, "ok", value.Int(1)), strata.ErrInvalidRunID, "%s nil run", o.name)
	}

	// Bad values, on a missing cell and on a live one (for CAS, with the
	// right counter, so the value is what fails).
	for _, v := range []strata.Value{nan, inf, nestedNaN, value.String(badUTF8)} {
		for _, o := range ops[:2] {
			require.ErrorIs(t, o.do(run, "v", v), strata.ErrInvalidValue, "%s %v", o.name, v)
		}
	}
	require.Equal(t, uint64(0), db.CurrentVersion(), "nothing was written")
	_, err := db.StateRead(ctx, run, "v")
	require.ErrorIs(t, err, strata.ErrNotFound)

	_, err = db.StateInit(ctx, run, "v", value.Int(0))
	require.NoError(t, err)
	before := db.CurrentVersion()
	for _, v := range []strata.Value{nan, inf, nestedNaN} {
		for _, o := range ops[1:3] {
			require.ErrorIs(t, o.do(run, "v", v), strata.ErrInvalidValue, "%s %v", o.name, v)
		}
		_, err := db.StateTransition(ctx, run, "v", func(strata.State) (strata.Value, error) { return v, nil })
		require.ErrorIs(t, err, strata.ErrInvalidValue, "transition to %v", v)
	}
	_, err = db.StateSet(ctx, run, "v", value.Bytes(make([]byte, strata.MaxValueSize+1)))
	require.ErrorIs(t, err, strata.ErrInvalidValue, "oversized value")
	require.Equal(t, before, db.CurrentVersion(), "nothing was written")
	requireState(t, db, run, "v", value.Int(0), 1)

	// A name of exactly MaxKeySize bytes, and any valid UTF-8, are fine.
	for _, n := range []string{strings.Repeat("n", strata.MaxKeySize), "état/日本/🙂", "a\x00b"} {
		c, err := db.StateInit(ctx, run, n, value.Int(1))
		require.NoError(t, err, "%q", n)
		require.Equal(t, uint64(1), c)
		requireState(t, db, run, n, value.Int(1), 1)
	}
}

func TestStateNoABA(t *testing.T) {
	db, run := openTxnDB(t)
	step := func(want uint64, c uint64, err error) {
		t.Helper()
		require.NoError(t, err)
		require.Equal(t, want, c)
	}
	c, err := db.StateInit(ctx, run, "x", value.String("a"))
	step(1, c, err)
	c, err = db.StateSet(ctx, run, "x", value.String("b"))
	step(2, c, err)
	existed, err := db.StateDelete(ctx, run, "x")
	require.NoError(t, err)
	require.True(t, existed)

	c, err = db.StateInit(ctx, run, "x", value.String("c"))
	step(3, c, err) // continues from the deleted cell: never restarts at 1
	requireState(t, db, run, "x", value.String("c"), 3)

	before := db.CurrentVersion()
	for _, stale := range []uint64{1, 2} {
		_, err = db.StateCAS(ctx, run, "x", stale, value.String("aba"))
		requireStateConflict(t, err, "x")
	}
	require.Equal(t, before, db.CurrentVersion())
	requireState(t, db, run, "x", value.String("c"), 3)
	c, err = db.StateCAS(ctx, run, "x", 3, value.String("d"))
	step(4, c, err)

	// Set re-creates a deleted cell from its last counter as well.
	_, err = db.StateDelete(ctx, run, "x")
	require.NoError(t, err)
	c, err = db.StateSet(ctx, run, "x", value.String("e"))
	step(5, c, err)

	// So does a delete and re-init inside one transaction.
	require.NoError(t, db.Transaction(ctx, run, func(tx *strata.Txn) error {
		existed, err := tx.StateDelete("x")
		require.NoError(t, err)
		require.True(t, existed)
		c, err := tx.StateInit("x", value.String("f"))
		require.NoError(t, err)
		require.Equal(t, uint64(6), c)
		return nil
	}))
	requireState(t, db, run, "x", value.String("f"), 6)
}

func TestStateCountersSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	run := strata.NewRunID()
	reopen := func(db *strata.Database) *strata.Database {
		t.Helper()
		if db != nil {
			require.NoError(t, db.Close())
		}
		db, err := strata.Open(dir)
		require.NoError(t, err)
		return db
	}
	db := reopen(nil)
	defer func() { _ = db.Close() }()

	c, err := db.StateInit(ctx, run, "x", value.Int(1))
	require.NoError(t, err)
	require.Equal(t, uint64(1), c)
	c, err = db.StateSet(ctx, run, "x", value.Int(2))
	require.NoError(t, err)
	require.Equal(t, uint64(2), c)
	_, err = db.StateInit(ctx, run, "gone", value.Int(0))
	require.NoError(t, err)
	_, err = db.StateDelete(ctx, run, "gone")
	require.NoError(t, err)

	db = reopen(db)
	s := requireState(t, db, run, "x", value.Int(2), 2)
	require.Equal(t, db.CurrentVersion()-2, s.Version, "x was written two commits before the init and delete of gone")
	c, err = db.StateCAS(ctx, run, "x", 2, value.Int(3))
	require.NoError(t, err)
	require.Equal(t, uint64(3), c, "counters continue after a reopen")
	_, err = db.StateRead(ctx, run, "gone")
	require.ErrorIs(t, err, strata.ErrNotFound, "a deletion survives a reopen")
	names, err := db.StateList(ctx, run, "")
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, names)
	c, err = db.StateInit(ctx, run, "gone", value.Int(0))
	require.NoError(t, err)
	require.Equal(t, uint64(2), c, "a cell deleted before the reopen continues from its counter")

	existed, err := db.StateDelete(ctx, run, "x")
	require.NoError(t, err)
	require.True(t, existed)

	db = reopen(db)
	_, err = db.StateRead(ctx, run, "x")
	require.ErrorIs(t, err, strata.ErrNotFound)
	c, err = db.StateInit(ctx, run, "x", value.Int(4))
	require.NoError(t, err)
	require.Equal(t, uint64(4), c, "delete, reopen, init: the counter is not reused")
	for _, stale := range []uint64{1, 2, 3} {
		_, err = db.StateCAS(ctx, run, "x", stale, value.Int(-1))
		requireStateConflict(t, err, "x")
	}

	db = reopen(db)
	requireState(t, db, run, "x", value.Int(4), 4)
	requireState(t, db, run, "gone", value.Int(0), 2)
}

// A transition returns the value as stored, as StateRead returns it: -0
// comes back as +0, the canonical encoding's zero (format.md).
func TestStateTransitionReturnsTheStoredValue(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.StateInit(ctx, run, "z", value.Int(0))
	require.NoError(t, err)
	out, err := db.StateTransition(ctx, run, "z", func(strata.State) (strata.Value, error) {
		return value.Array(value.Float(math.Copysign(0, -1))), nil
	})
	require.NoError(t, err)
	got, err := db.StateRead(ctx, run, "z")
	require.NoError(t, err)
	require.Equal(t, got, out)
	arr, _ := out.Value.AsArray()
	require.Len(t, arr, 1)
	f, ok := arr[0].AsFloat()
	require.True(t, ok, "returned %v", out.Value)
	require.False(t, math.Signbit(f), "the returned zero is the stored +0")
}

func TestStateTransition(t *testing.T) {
	db, run := openTxnDB(t)
	c, err := db.StateInit(ctx, run, "n", value.Int(0))
	require.NoError(t, err)
	require.Equal(t, uint64(1), c)

	const goroutines, calls = 16, 50
	var (
		mu       sync.Mutex
		counters []uint64
		fnCalls  atomic.Int64
		wg       sync.WaitGroup
	)
	errs := make(chan error, goroutines*calls)
	for range goroutines {
		wg.Go(func() {
			for range calls {
				s, err := db.StateTransition(ctx, run, "n", func(cur strata.State) (strata.Value, error) {
					fnCalls.Add(1)
					runtime.Gosched() // let others commit between the read and this commit
					n, ok := cur.Value.AsInt()
					if !ok {
						return strata.Value{}, fmt.Errorf("not an int: %v", cur.Value)
					}
					return value.Int(n + 1), nil
				})
				if err != nil {
					errs <- err
					continue
				}
				n, _ := s.Value.AsInt()
				if s.Name != "n" || s.Counter != uint64(n)+1 || s.Version == 0 || s.Timestamp.IsZero() {
					errs <- fmt.Errorf("transition returned %+v", s)
				}
				mu.Lock()
				counters = append(counters, s.Counter)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d transitions called fn %d times", goroutines*calls, fnCalls.Load())
	require.GreaterOrEqual(t, fnCalls.Load(), int64(goroutines*calls))
	s := requireState(t, db, run, "n", value.Int(goroutines*calls), goroutines*calls+1)
	require.Equal(t, db.CurrentVersion(), s.Version)
	// Every transition wrote its own counter: 2 .. 801, each exactly once.
	slices.Sort(counters)
	want := make([]uint64, goroutines*calls)
	for i := range want {
		want[i] = uint64(i) + 2
	}
	require.Equal(t, want, counters)

	// The state a transition returns is the one stored.
	out, err := db.StateTransition(ctx, run, "n", func(strata.State) (strata.Value, error) { return value.String("done"), nil })
	require.NoError(t, err)
	got := requireState(t, db, run, "n", value.String("done"), goroutines*calls+2)
	require.Equal(t, got.Counter, out.Counter)
	require.Equal(t, got.Version, out.Version)
	require.True(t, got.Timestamp.Equal(out.Timestamp))
	// An error from fn aborts and writes nothing.
	errBoom := errors.New("boom")
	before := db.CurrentVersion()
	calledWith := uint64(0)
	_, err = db.StateTransition(ctx, run, "n", func(cur strata.State) (strata.Value, error) {
		calledWith = cur.Counter
		return value.Int(-1), errBoom
	})
	require.ErrorIs(t, err, errBoom)
	require.Equal(t, got.Counter, calledWith, "fn sees the current state")
	require.Equal(t, before, db.CurrentVersion())
	requireState(t, db, run, "n", value.String("done"), goroutines*calls+2)

	// Also an error of fn that matches ErrConflict: fn runs once and its
	// error comes back as it was (only the commit's own conflicts retry).
	ruleErr := fmt.Errorf("business rule: %w", strata.ErrConflict)
	fnRuns := 0
	_, err = db.StateTransition(ctx, run, "n", func(strata.State) (strata.Value, error) {
		fnRuns++
		return strata.Value{}, ruleErr
	})
	require.Same(t, ruleErr, err)
	require.Equal(t, 1, fnRuns)

	// A missing or deleted cell returns ErrNotFound without calling fn.
	called := false
	noCall := func(strata.State) (strata.Value, error) { called = true; return value.Null(), nil }
	_, err = db.StateTransition(ctx, run, "missing", noCall)
	require.ErrorIs(t, err, strata.ErrNotFound)
	_, err = db.StateDelete(ctx, run, "n")
	require.NoError(t, err)
	before = db.CurrentVersion()
	_, err = db.StateTransition(ctx, run, "n", noCall)
	require.ErrorIs(t, err, strata.ErrNotFound)
	require.False(t, called)
	require.Equal(t, before, db.CurrentVersion())
}

// raceAll runs f(0..n-1) in n goroutines released together and returns
// their results.
func raceAll[T any](n int, f func(g int) T) []T {
	out := make([]T, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			<-start
			out[g] = f(g)
		})
	}
	close(start)
	wg.Wait()
	return out
}

type stateResult struct {
	counter uint64
	err     error
}

func TestStateConcurrentInitOneWinner(t *testing.T) {
	db, run := openTxnDB(t)
	for round := range 10 {
		name := fmt.Sprintf("cell-%d", round)
		res := raceAll(16, func(g int) stateResult {
			c, err := db.StateInit(ctx, run, name, value.Int(int64(g)))
			return stateResult{c, err}
		})
		winner := -1
		for g, r := range res {
			if r.err == nil {
				require.Equal(t, -1, winner, "round %d: goroutines %d and %d both initialised %q", round, winner, g, name)
				require.Equal(t, uint64(1), r.counter)
				winner = g
				continue
			}
			require.ErrorIs(t, r.err, strata.ErrStateExists, "round %d goroutine %d", round, g)
		}
		require.NotEqual(t, -1, winner, "round %d: no init won", round)
		requireState(t, db, run, name, value.Int(int64(winner)), 1)
	}
}

func TestStateConcurrentCASOneWinner(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.StateInit(ctx, run, "cell", value.Int(-1))
	require.NoError(t, err)
	for round := range 10 {
		expected := uint64(round) + 1
		res := raceAll(16, func(g int) stateResult {
			c, err := db.StateCAS(ctx, run, "cell", expected, value.Int(int64(g)))
			return stateResult{c, err}
		})
		winner := -1
		for g, r := range res {
			if r.err == nil {
				require.Equal(t, -1, winner, "round %d: goroutines %d and %d both won", round, winner, g)
				require.Equal(t, expected+1, r.counter)
				winner = g
				continue
			}
			requireStateConflict(t, r.err, "cell")
		}
		require.NotEqual(t, -1, winner, "round %d: no CAS won", round)
		requireState(t, db, run, "cell", value.Int(int64(winner)), expected+1)
	}
}

func TestStateTxnConcurrentInitConflicts(t *testing.T) {
	db, run := openTxnDB(t)
	a, b := begin(t, db, run), begin(t, db, run)
	for i, tx := range []*strata.Txn{a, b} {
		c, err := tx.StateInit("c", value.Int(int64(i)))
		require.NoError(t, err)
		require.Equal(t, uint64(1), c)
		s, err := tx.StateRead("c")
		require.NoError(t, err)
		require.Equal(t, uint64(1), s.Counter)
		require.Zero(t, s.Version, "the transaction's own write has no version yet")
	}
	va, err := a.Commit()
	require.NoError(t, err)
	_, err = b.Commit()
	requireStateConflict(t, err, "c")
	s := requireState(t, db, run, "c", value.Int(0), 1)
	require.Equal(t, va, s.Version)
	require.Equal(t, va, db.CurrentVersion(), "the losing init wrote nothing")

	// Two transactions CAS with the same counter: one commits.
	a, b = begin(t, db, run), begin(t, db, run)
	for i, tx := range []*strata.Txn{a, b} {
		c, err := tx.StateCAS("c", 1, value.Int(int64(10+i)))
		require.NoError(t, err)
		require.Equal(t, uint64(2), c)
	}
	_, err = b.Commit()
	require.NoError(t, err)
	_, err = a.Commit()
	requireStateConflict(t, err, "c")
	requireState(t, db, run, "c", value.Int(11), 2)

	// A transaction that read the cell loses to a concurrent delete.
	a = begin(t, db, run)
	_, err = a.StateSet("c", value.Int(99))
	require.NoError(t, err)
	existed, err := db.StateDelete(ctx, run, "c")
	require.NoError(t, err)
	require.True(t, existed)
	_, err = a.Commit()
	requireStateConflict(t, err, "c")
	_, err = db.StateRead(ctx, run, "c")
	require.ErrorIs(t, err, strata.ErrNotFound)
}

func TestStateTxnSeesOwnWrites(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.StateInit(ctx, run, "a", value.Int(1))
	require.NoError(t, err)
	tx := begin(t, db, run)
	c, err := tx.StateSet("a", value.Int(2))
	require.NoError(t, err)
	require.Equal(t, uint64(2), c)
	c, err = tx.StateCAS("a", 2, value.Int(3))
	require.NoError(t, err)
	require.Equal(t, uint64(3), c, "CAS sees the transaction's own set")
	c, err = tx.StateInit("b", value.Int(1))
	require.NoError(t, err)
	require.Equal(t, uint64(1), c)
	names, err := tx.StateList("")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, names)
	existed, err := tx.StateDelete("b")
	require.NoError(t, err)
	require.True(t, existed)
	names, err = tx.StateList("")
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, names)

	// Nothing is visible outside before the commit.
	requireState(t, db, run, "a", value.Int(1), 1)
	v, err := tx.Commit()
	require.NoError(t, err)
	s := requireState(t, db, run, "a", value.Int(3), 3)
	require.Equal(t, v, s.Version)
	_, err = db.StateRead(ctx, run, "b")
	require.ErrorIs(t, err, strata.ErrNotFound)
	c, err = db.StateInit(ctx, run, "b", value.Null())
	require.NoError(t, err)
	require.Equal(t, uint64(2), c, "b's counter 1 was used inside the transaction, and is not reused")
}

func TestStateAndKVInOneTransaction(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.StateInit(ctx, run, "kept", value.String("old"))
	require.NoError(t, err)
	before := db.CurrentVersion()

	// Aborted by fn's error: neither the state cells nor the KV key.
	errAbort := errors.New("abort")
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		if _, err := tx.StateSet("s", value.Int(1)); err != nil {
			return err
		}
		if _, err := tx.StateSet("kept", value.String("new")); err != nil {
			return err
		}
		if err := tx.Put([]byte("k"), value.Int(1)); err != nil {
			return err
		}
		return errAbort
	})
	require.ErrorIs(t, err, errAbort)
	require.Equal(t, before, db.CurrentVersion(), "an aborted transaction writes nothing")
	_, err = db.StateRead(ctx, run, "s")
	require.ErrorIs(t, err, strata.ErrNotFound)
	_, err = db.Get(ctx, run, []byte("k"))
	require.ErrorIs(t, err, strata.ErrNotFound)
	requireState(t, db, run, "kept", value.String("old"), 1)

	// Committed: both at one version.
	v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
		if _, err := tx.StateSet("s", value.Int(1)); err != nil {
			return err
		}
		return tx.Put([]byte("k"), value.Int(1))
	})
	require.NoError(t, err)
	s := requireState(t, db, run, "s", value.Int(1), 1)
	got, err := db.Get(ctx, run, []byte("k"))
	require.NoError(t, err)
	require.Equal(t, v, s.Version)
	require.Equal(t, v, got.Version)

	// A conflict on the KV key fails the commit of the state write too.
	a := begin(t, db, run)
	_, err = a.Get([]byte("k"))
	require.NoError(t, err)
	_, err = a.StateSet("s", value.Int(2))
	require.NoError(t, err)
	put(t, db, run, "k", 2)
	_, err = a.Commit()
	requireConflict(t, err, "k")
	requireState(t, db, run, "s", value.Int(1), 1)
}

// A list prefix no name or key can start with is bad input, in the direct
// and the transactional calls alike.
func TestListPrefixesAreChecked(t *testing.T) {
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	long := strings.Repeat("p", strata.MaxKeySize+1)
	_, err = db.StateList(ctx, run, long)
	require.ErrorIs(t, err, strata.ErrInvalidKey)
	_, err = db.StateList(ctx, run, "\xff")
	require.ErrorIs(t, err, strata.ErrInvalidKey)
	_, err = db.List(ctx, run, []byte(long), strata.ListOptions{})
	require.ErrorIs(t, err, strata.ErrInvalidKey)
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		_, err := tx.List([]byte(long))
		return err
	})
	require.ErrorIs(t, err, strata.ErrInvalidKey)
	_, err = db.EventsByType(ctx, run, "")
	require.ErrorIs(t, err, events.ErrInvalidEvent)
}
