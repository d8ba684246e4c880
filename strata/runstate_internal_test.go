package strata

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// A process that touches many runs, even only to read them, keeps a
// bounded number of run states: idle ones are dropped by the sweeps.
func TestRunStatesStayBounded(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	hot := NewRunID()
	for i := range 20_000 {
		run := NewRunID()
		switch i % 3 {
		case 0:
			_, err = db.Get(ctx, run, []byte("k"))
			require.ErrorIs(t, err, ErrNotFound)
		case 1:
			_, err = db.Put(ctx, run, []byte("k"), value.Int(1))
			require.NoError(t, err)
		case 2:
			require.NoError(t, db.Transaction(ctx, run, func(tx *Txn) error {
				_, err := tx.Exists([]byte("k"))
				return err
			}))
		}
		_, err = db.Put(ctx, hot, fmt.Appendf(nil, "k%d", i), value.Int(int64(i)))
		require.NoError(t, err)
	}
	require.LessOrEqual(t, db.runs.n.Load(), int64(2*defaultMinSweep), "states of idle runs are dropped")
	_, ok := db.runs.m.Load(hot)
	require.True(t, ok, "a run in use keeps its state")
}

// A run's state is created again after a sweep dropped it, and the first
// holder of its lock sets its last version at or above every commit the
// run had: a transaction that read before a commit through the dropped
// state must still be validated against it.
func TestRunStateCreatedAgainKnowsTheRunsLastCommit(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	run := NewRunID()
	v, err := db.Put(ctx, run, []byte("k"), value.Int(1))
	require.NoError(t, err)
	db.runs.sweep(nil) // the first sweep gives a second chance
	db.runs.sweep(nil) // the second drops the idle state
	_, ok := db.runs.m.Load(run)
	require.False(t, ok, "the idle state was dropped")

	var seen uint64
	_, err = db.commit(context.Background(), run, nil, func(lastInRun uint64) error {
		seen = lastInRun
		return nil
	}, DurabilityNone)
	require.NoError(t, err)
	require.GreaterOrEqual(t, seen, v, "a new state's last covers the commit made through the dropped one")
}

// Conflicts are found while run states are dropped and created again all
// the time: with a sweep at every few new states, transfers between
// accounts conserve the total and lose no update.
func TestConflictsAcrossDroppedRunStates(t *testing.T) {
	db, err := OpenWithMode(t.TempDir(), DurabilityNone)
	require.NoError(t, err)
	defer db.Close()
	db.runs.minSweep = 2
	ctx := context.Background()
	run := NewRunID()
	const accounts, start = 8, 1000
	for a := range accounts {
		_, err := db.Put(ctx, run, fmt.Appendf(nil, "acct%d", a), value.Int(start))
		require.NoError(t, err)
	}
	var stop atomic.Bool
	var churn sync.WaitGroup
	for range 2 {
		churn.Go(func() { // new runs: a sweep every few states
			for !stop.Load() {
				_, err := db.Exists(ctx, NewRunID(), []byte("k"))
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var workers sync.WaitGroup
	var transfers atomic.Int64
	for w := range 4 {
		workers.Go(func() {
			for i := range 300 {
				from, to := (w+i)%accounts, (w+3*i+1)%accounts
				if from == to {
					continue
				}
				err := db.Transaction(ctx, run, func(tx *Txn) error {
					a, err := tx.Get(fmt.Appendf(nil, "acct%d", from))
					if err != nil {
						return err
					}
					b, err := tx.Get(fmt.Appendf(nil, "acct%d", to))
					if err != nil {
						return err
					}
					x, _ := a.Value.AsInt()
					y, _ := b.Value.AsInt()
					if err := tx.Put(fmt.Appendf(nil, "acct%d", from), value.Int(x-1)); err != nil {
						return err
					}
					return tx.Put(fmt.Appendf(nil, "acct%d", to), value.Int(y+1))
				}, WithRetry(RetryConfig{MaxRetries: 1000, BaseDelay: 1, MaxDelay: 1000}))
				if err != nil {
					t.Error(err)
					return
				}
				transfers.Add(1)
			}
		})
	}
	workers.Wait()
	stop.Store(true)
	churn.Wait()
	total := int64(0)
	for a := range accounts {
		got, err := db.Get(ctx, run, fmt.Appendf(nil, "acct%d", a))
		require.NoError(t, err)
		n, _ := got.Value.AsInt()
		total += n
	}
	require.Equal(t, int64(accounts*start), total, "after %d transfers", transfers.Load())
	require.False(t, errors.Is(db.Err(), ErrFailed))
}
