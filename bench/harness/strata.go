package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

// strataPut writes a fresh key per op with Database.Put into a new Strata
// database per rep, all goroutines in one run.
func strataPut(cfg Config, mode strata.DurabilityMode, goroutines int) Workload {
	return Workload{
		System:     "strata",
		Setting:    fmt.Sprintf("Put, Durability %s", mode),
		Goroutines: goroutines,
		Start: func(p Plan) (Instance, error) {
			in := newWriteInputs(p)
			db, dir, err := openStrata(cfg, mode)
			if err != nil {
				return Instance{}, err
			}
			ctx, run := context.Background(), strata.NewRunID()
			return Instance{
				Op: func(g, i int) error {
					k, v := in.kv(g, i)
					_, err := db.Put(ctx, run, k, value.Bytes(v))
					return err
				},
				Close: closeAndRemove(db.Close, dir),
			}, nil
		},
	}
}

// openStrata opens a Strata database with mode in a fresh directory, with
// the write groups' memtable and cache sizes.
func openStrata(cfg Config, mode strata.DurabilityMode) (*strata.Database, string, error) {
	dir, err := freshDir("strata")
	if err != nil {
		return nil, "", err
	}
	db, err := strata.OpenWith(strata.Options{
		Path:         dir,
		Durability:   mode,
		MemTableSize: cfg.MemTableSize,
		CacheSize:    cfg.CacheSize,
	})
	if err != nil {
		return nil, "", errors.Join(err, os.RemoveAll(dir))
	}
	return db, dir, nil
}

// strataGet reads random keys of a Strata database loaded once with keys.
func strataGet(cfg Config, keys *keySet) Workload {
	var (
		ctx = context.Background()
		run = strata.NewRunID()
		dir string
		db  *strata.Database
	)
	open := func() (err error) {
		db, err = strata.OpenWith(strata.Options{
			Path:         dir,
			Durability:   strata.DurabilityNone,
			MemTableSize: cfg.MemTableSize,
			CacheSize:    cfg.ReadCacheSize,
		})
		return err
	}
	get := func(i int) error {
		got, err := db.Get(ctx, run, keys.key(i))
		if err != nil {
			return err
		}
		if b, ok := got.Value.AsBytes(); !ok || len(b) != ValueSize {
			return errBadValue
		}
		return nil
	}
	probe := func() activity {
		m := db.Metrics().Storage
		return activity{m.Flushes, m.Compactions, int64(m.DiskSpaceUsage)}
	}
	return Workload{
		System:     "strata",
		Setting:    fmt.Sprintf("Get, %d keys", keys.len()),
		Goroutines: 1,
		Prepare: func() (err error) {
			if dir, err = freshDir("strata"); err != nil {
				return err
			}
			if err := open(); err != nil {
				return err
			}
			if err := strataLoad(ctx, db, run, keys); err != nil {
				return err
			}
			// Close and reopen, as the Pebble side does, so that both
			// stores start from what recovery makes of the same writes.
			if err := db.Close(); err != nil {
				return err
			}
			if err := open(); err != nil {
				return err
			}
			return settleAndWarm(cfg, "strata", keys.len(), get, probe)
		},
		Start: func(p Plan) (Instance, error) {
			idx := keys.readIndexes(p)
			return Instance{
				Op:    func(g, i int) error { return get(int(idx[g][i])) },
				Close: func() error { return nil },
			}, nil
		},
		Cleanup: func() error {
			var err error
			if db != nil {
				err = db.Close()
			}
			if dir != "" {
				err = errors.Join(err, os.RemoveAll(dir))
			}
			return err
		},
	}
}

// strataLoad puts every key of keys into run from a few goroutines.
func strataLoad(ctx context.Context, db *strata.Database, run strata.RunID, keys *keySet) error {
	const loaders = 4
	n := keys.len()
	var wg sync.WaitGroup
	errs := make([]error, loaders)
	for l := range loaders {
		wg.Go(func() {
			for i := l * n / loaders; i < (l+1)*n/loaders; i++ {
				if _, err := db.Put(ctx, run, keys.key(i), value.Bytes(keys.vals.value(i))); err != nil {
					errs[l] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
