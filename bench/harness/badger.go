package harness

import (
	"errors"
	"os"

	"github.com/dgraph-io/badger/v4"
)

// badgerPut writes a fresh key per op in a one-Set DB.Update transaction
// into a new Badger store per rep, with default options and SyncWrites set
// to syncWrites.
func badgerPut(syncWrites bool, goroutines int) Workload {
	setting := "Update, SyncWrites=false"
	if syncWrites {
		setting = "Update, SyncWrites=true"
	}
	return Workload{
		System:     "badger",
		Setting:    setting,
		Goroutines: goroutines,
		Start: func(p Plan) (Instance, error) {
			in := newWriteInputs(p)
			db, dir, err := openBadger(syncWrites)
			if err != nil {
				return Instance{}, err
			}
			return Instance{
				Op: func(g, i int) error {
					k, v := in.kv(g, i)
					return db.Update(func(txn *badger.Txn) error { return txn.Set(k, v) })
				},
				Close: closeAndRemove(db.Close, dir),
			}, nil
		},
	}
}

// openBadger opens a Badger store with default options and SyncWrites set
// to syncWrites in a fresh directory.
func openBadger(syncWrites bool) (*badger.DB, string, error) {
	dir, err := freshDir("badger")
	if err != nil {
		return nil, "", err
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(syncWrites))
	if err != nil {
		return nil, "", errors.Join(err, os.RemoveAll(dir))
	}
	return db, dir, nil
}
