package strata_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

func account(i int) []byte { return fmt.Appendf(nil, "acct/%04d", i) }

func intOf(t *testing.T, v strata.Versioned) int64 {
	n, ok := v.Value.AsInt()
	require.True(t, ok)
	return n
}

// TestBank moves money between 1,000 accounts from 16 goroutines, with
// retries, while a reader checks that every snapshot holds the same total;
// at the end the total is unchanged and no update was lost (each goroutine's
// transfer counter, incremented in the same transactions, matches the
// transfers it saw commit).
func TestBank(t *testing.T) {
	const accounts, initial, workers = 1000, 100, 16
	transfers := 200
	if testing.Short() {
		transfers = 50
	}
	db, run := openTxnDB(t)
	require.NoError(t, db.Transaction(ctx, run, func(tx *strata.Txn) error {
		for i := range accounts {
			if err := tx.Put(account(i), value.Int(initial)); err != nil {
				return err
			}
		}
		return nil
	}))
	retry := strata.WithRetry(strata.RetryConfig{MaxRetries: 1000, BaseDelay: 50 * time.Microsecond, MaxDelay: 5 * time.Millisecond})

	var stop atomic.Bool
	var snapshots atomic.Int64
	var reader sync.WaitGroup
	reader.Go(func() {
		for !stop.Load() {
			err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
				keys, err := tx.List([]byte("acct/"))
				if err != nil {
					return err
				}
				require.Len(t, keys, accounts)
				var sum int64
				for _, k := range keys {
					v, err := tx.Get(k)
					if err != nil {
						return err
					}
					sum += intOf(t, v)
				}
				require.Equal(t, int64(accounts*initial), sum, "snapshot %d", tx.Snapshot())
				return nil
			})
			require.NoError(t, err)
			snapshots.Add(1)
			// The counters are not read atomically, but consistently.
			m := db.Metrics().Transactions
			require.LessOrEqual(t, m.Completed()+m.Active, m.Started, "%+v", m)
		}
	})

	committed := make([]int64, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			counter := fmt.Appendf(nil, "count/%02d", g)
			for range transfers {
				from, to := rng.IntN(accounts), rng.IntN(accounts)
				amount := int64(1 + rng.IntN(20))
				if from == to {
					continue
				}
				moved := false
				err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
					moved = false // the closure may run again after a conflict
					a, err := tx.Get(account(from))
					if err != nil {
						return err
					}
					b, err := tx.Get(account(to))
					if err != nil {
						return err
					}
					if intOf(t, a) < amount {
						return nil // insufficient funds: commit nothing
					}
					n := int64(0)
					if c, err := tx.Get(counter); err == nil {
						n = intOf(t, c)
					}
					if err := tx.Put(account(from), value.Int(intOf(t, a)-amount)); err != nil {
						return err
					}
					if err := tx.Put(account(to), value.Int(intOf(t, b)+amount)); err != nil {
						return err
					}
					moved = true
					return tx.Put(counter, value.Int(n+1))
				}, retry)
				require.NoError(t, err)
				if moved {
					committed[g]++
				}
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	reader.Wait()

	var sum int64
	for i := range accounts {
		v, err := db.Get(ctx, run, account(i))
		require.NoError(t, err)
		sum += intOf(t, v)
	}
	require.Equal(t, int64(accounts*initial), sum, "money is conserved")
	var counted int64
	for g := range workers {
		var n int64
		if v, err := db.Get(ctx, run, fmt.Appendf(nil, "count/%02d", g)); err == nil {
			n = intOf(t, v)
		}
		require.Equal(t, committed[g], n, "worker %d: no transfer lost or counted twice", g)
		counted += n
	}
	m := db.Metrics().Transactions
	t.Logf("%d transfer attempts, %d transfers counted, %d reader snapshots, %d commits, %d aborts (retried conflicts)",
		workers*transfers, counted, snapshots.Load(), m.Committed, m.Aborted)
	require.Positive(t, counted)
	require.Zero(t, m.Active)
}
