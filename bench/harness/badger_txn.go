package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// badgerReadWrite is Badger's side of the read-write transaction groups:
// per op, a DB.Update that Gets reads (at least 1) random loaded keys and
// Sets a fresh value under the first, with SyncWrites=false, in a new Badger
// store per rep loaded with keys.
func badgerReadWrite(keys *keySet, reads int) Workload {
	return Workload{
		System:     "badger",
		Setting:    fmt.Sprintf("Update{%s}, SyncWrites=false", readWriteShape(reads, "Get", "Set")),
		Goroutines: 1,
		Start: func(p Plan) (Instance, error) {
			in := newRWInputs(keys, reads, p)
			db, dir, err := openBadger(false)
			if err != nil {
				return Instance{}, err
			}
			if err := badgerLoad(db, keys); err != nil {
				return Instance{}, errors.Join(err, closeAndRemove(db.Close, dir)())
			}
			return Instance{
				Op: func(g, i int) error {
					return db.Update(func(txn *badger.Txn) error {
						for j := range reads {
							if err := badgerCheckGet(txn, in.key(g, i, j)); err != nil {
								return err
							}
						}
						return txn.Set(in.key(g, i, 0), in.value(g, i))
					})
				},
				Close: closeAndRemove(db.Close, dir),
			}, nil
		},
	}
}

// badgerCheckGet reads key in txn and checks that its value has the loaded
// size.
func badgerCheckGet(txn *badger.Txn, key []byte) error {
	item, err := txn.Get(key)
	if err != nil {
		return fmt.Errorf("get %x: %w", key, err)
	}
	return item.Value(func(v []byte) error {
		if len(v) != ValueSize {
			return errBadValue
		}
		return nil
	})
}

// badgerLoad writes every key of keys with a WriteBatch.
func badgerLoad(db *badger.DB, keys *keySet) error {
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	for i := range keys.len() {
		if err := wb.Set(keys.key(i), keys.vals.value(i)); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// badgerContended increments one counter key (8 bytes, big-endian) per op,
// from every goroutine, in a Get-then-Set DB.Update with SyncWrites=false,
// retrying badger.ErrConflict as Strata's WithRetry(contendedRetry) does. It
// counts attempts and conflicts, and Close checks that no increment was
// lost.
func badgerContended(goroutines int) Workload {
	key := []byte("contended-counter")
	return Workload{
		System:     "badger",
		Setting:    "Update{Get, Set +1} on one key, SyncWrites=false, retried on ErrConflict",
		Goroutines: goroutines,
		Start: func(Plan) (Instance, error) {
			db, dir, err := openBadger(false)
			if err != nil {
				return Instance{}, err
			}
			closeDB := closeAndRemove(db.Close, dir)
			if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key, binary.BigEndian.AppendUint64(nil, 0)) }); err != nil {
				return Instance{}, errors.Join(err, closeDB())
			}
			var commits, attempts, aborts atomic.Int64
			incr := func(txn *badger.Txn) error {
				n, err := badgerCounter(txn, key)
				if err != nil {
					return err
				}
				return txn.Set(key, binary.BigEndian.AppendUint64(nil, n+1))
			}
			return Instance{
				Op: func(int, int) error {
					for attempt := 0; ; attempt++ {
						attempts.Add(1)
						err := db.Update(incr)
						switch {
						case err == nil:
							commits.Add(1)
							return nil
						case !errors.Is(err, badger.ErrConflict):
							return err
						}
						aborts.Add(1)
						if attempt >= contendedRetry.MaxRetries {
							return err
						}
						time.Sleep(backoff(contendedRetry, attempt))
					}
				},
				Close: func() error {
					var n uint64
					err := db.View(func(txn *badger.Txn) (err error) {
						n, err = badgerCounter(txn, key)
						return err
					})
					if err == nil {
						err = checkCounter(int64(n), true, commits.Load())
					}
					return errors.Join(err, closeDB())
				},
				Counts: func() TxnCounts {
					return TxnCounts{Attempts: attempts.Load(), Aborts: aborts.Load()}
				},
			}, nil
		},
	}
}

// badgerCounter reads the counter under key in txn.
func badgerCounter(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return errBadValue
		}
		n = binary.BigEndian.Uint64(v)
		return nil
	})
	return n, err
}
