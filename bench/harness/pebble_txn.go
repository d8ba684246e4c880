package harness

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleReadWrite is raw Pebble's side of the read-write transaction
// groups: per op, reads DB.Gets of random loaded keys, then a NoSync DB.Set
// of a fresh value under the first of them (with no reads, under a random
// loaded key), in a new Pebble store per rep loaded with keys. Operations
// use slots keys, as the other systems' do, so that all write the same keys.
func pebbleReadWrite(cfg Config, keys *keySet, reads, slots int) Workload {
	return Workload{
		System:     "pebble",
		Setting:    readWriteShape(reads, "Get", "Set") + ", NoSync",
		Goroutines: 1,
		Start: func(p Plan) (Instance, error) {
			in := newRWInputs(keys, slots, p)
			db, dir, err := openPebble(cfg)
			if err != nil {
				return Instance{}, err
			}
			if err := pebbleLoad(db, keys); err != nil {
				return Instance{}, errors.Join(err, closeAndRemove(db.Close, dir)())
			}
			return Instance{
				Op: func(g, i int) error {
					for j := range reads {
						if err := pebbleCheckGet(db, in.key(g, i, j)); err != nil {
							return err
						}
					}
					return db.Set(in.key(g, i, 0), in.value(g, i), pebble.NoSync)
				},
				Close: closeAndRemove(db.Close, dir),
			}, nil
		},
	}
}

// pebbleCheckGet reads key and checks that its value has the loaded size.
func pebbleCheckGet(db *pebble.DB, key []byte) error {
	v, closer, err := db.Get(key)
	if err != nil {
		return fmt.Errorf("get %x: %w", key, err)
	}
	n := len(v)
	if err := closer.Close(); err != nil {
		return err
	}
	if n != ValueSize {
		return errBadValue
	}
	return nil
}
