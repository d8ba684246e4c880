package harness

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

// strataTxnPut writes a fresh key per op in a one-Put Database.Transaction
// into a new Strata database per rep. All goroutines share one run, or, if
// runPerGoroutine is set, each has a run of its own.
func strataTxnPut(cfg Config, mode strata.DurabilityMode, goroutines int, runPerGoroutine bool) Workload {
	setting := fmt.Sprintf("Transaction{Put}, Durability %s", mode)
	if runPerGoroutine {
		setting += ", a run per goroutine"
	}
	return Workload{
		System:     "strata",
		Setting:    setting,
		Goroutines: goroutines,
		Start: func(p Plan) (Instance, error) {
			in := newWriteInputs(p)
			db, dir, err := openStrata(cfg, mode)
			if err != nil {
				return Instance{}, err
			}
			ctx := context.Background()
			runs := make([]strata.RunID, goroutines)
			shared := strata.NewRunID()
			for g := range runs {
				runs[g] = shared
				if runPerGoroutine {
					runs[g] = strata.NewRunID()
				}
			}
			return Instance{
				Op: func(g, i int) error {
					k, v := in.kv(g, i)
					return db.Transaction(ctx, runs[g], func(tx *strata.Txn) error {
						return tx.Put(k, value.Bytes(v))
					})
				},
				Close: closeAndRemove(db.Close, dir),
			}, nil
		},
	}
}

// strataTxnReadWrite runs, per op, a Database.Transaction that Gets reads
// (at least 1) random loaded keys and Puts a fresh value under the first,
// with DurabilityNone, in a new Strata database per rep loaded with keys.
func strataTxnReadWrite(cfg Config, keys *keySet, reads int) Workload {
	mode := strata.DurabilityNone
	return Workload{
		System:     "strata",
		Setting:    fmt.Sprintf("Transaction{%s}, Durability %s", readWriteShape(reads, "Get", "Put"), mode),
		Goroutines: 1,
		Start: func(p Plan) (Instance, error) {
			in := newRWInputs(keys, reads, p)
			db, dir, err := openStrata(cfg, mode)
			if err != nil {
				return Instance{}, err
			}
			ctx, run := context.Background(), strata.NewRunID()
			if err := strataLoad(ctx, db, run, keys); err != nil {
				return Instance{}, errors.Join(err, closeAndRemove(db.Close, dir)())
			}
			return Instance{
				Op: func(g, i int) error {
					return db.Transaction(ctx, run, func(tx *strata.Txn) error {
						for j := range reads {
							got, err := tx.Get(in.key(g, i, j))
							if err != nil {
								return err
							}
							if b, ok := got.Value.AsBytes(); !ok || len(b) != ValueSize {
								return errBadValue
							}
						}
						return tx.Put(in.key(g, i, 0), value.Bytes(in.value(g, i)))
					})
				},
				Close: closeAndRemove(db.Close, dir),
			}, nil
		},
	}
}

// strataContended increments one counter key per op, from every goroutine,
// in a Get-then-Put Database.Transaction with DurabilityNone, retried on
// conflicts with contendedRetry. It counts attempts and aborts with
// Database.Metrics, and Close checks that no increment was lost.
func strataContended(cfg Config, goroutines int) Workload {
	mode := strata.DurabilityNone
	key := []byte("contended-counter")
	return Workload{
		System:     "strata",
		Setting:    fmt.Sprintf("Transaction{Get, Put +1} on one key, Durability %s, WithRetry", mode),
		Goroutines: goroutines,
		Start: func(Plan) (Instance, error) {
			db, dir, err := openStrata(cfg, mode)
			if err != nil {
				return Instance{}, err
			}
			closeDB := closeAndRemove(db.Close, dir)
			ctx, run := context.Background(), strata.NewRunID()
			if _, err := db.Put(ctx, run, key, value.Int(0)); err != nil {
				return Instance{}, errors.Join(err, closeDB())
			}
			var commits atomic.Int64
			incr := func(tx *strata.Txn) error {
				got, err := tx.Get(key)
				if err != nil {
					return err
				}
				n, ok := got.Value.AsInt()
				if !ok {
					return errBadValue
				}
				return tx.Put(key, value.Int(n+1))
			}
			return Instance{
				Op: func(int, int) error {
					if err := db.Transaction(ctx, run, incr, strata.WithRetry(contendedRetry)); err != nil {
						return err
					}
					commits.Add(1)
					return nil
				},
				Close: func() error {
					got, err := db.Get(ctx, run, key)
					if err == nil {
						n, ok := got.Value.AsInt()
						err = checkCounter(n, ok, commits.Load())
					}
					return errors.Join(err, closeDB())
				},
				Counts: func() TxnCounts {
					m := db.Metrics().Transactions
					return TxnCounts{Attempts: m.Started, Aborts: m.Aborted}
				},
			}, nil
		},
	}
}

// readWriteShape describes a read-write operation: reads gets of random
// loaded keys and a put of a fresh value under the first of them (or, with
// no reads, under a random loaded key).
func readWriteShape(reads int, get, put string) string {
	switch reads {
	case 0:
		return put + " of a loaded key"
	case 1:
		return get + " + " + put + " of a loaded key"
	}
	return fmt.Sprintf("%d %ss + %s of the first, loaded keys", reads, get, put)
}
