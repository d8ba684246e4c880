package strata_test

import (
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

// These benchmarks measure Strata alone; bench/ runs the same workloads side
// by side with raw Pebble and Badger and reports ratios.

func randomKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = make([]byte, 16)
		_, _ = rand.Read(keys[i])
	}
	return keys
}

func BenchmarkPut(b *testing.B) {
	val := value.Bytes(make([]byte, 100))
	for _, mode := range []strata.DurabilityMode{strata.DurabilityNone, strata.DurabilityBatched, strata.DurabilityStrict} {
		for _, writers := range []int{1, 8, 64} {
			if writers > 1 && mode != strata.DurabilityStrict {
				continue
			}
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				db, err := strata.OpenWithMode(b.TempDir(), mode)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				run := strata.NewRunID()
				keys := randomKeys(1 << 16)
				if writers == 1 {
					for i := 0; b.Loop(); i++ {
						if _, err := db.Put(ctx, run, keys[i&(len(keys)-1)], val); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				var next atomic.Int64
				// RunParallel starts parallelism × GOMAXPROCS goroutines.
				b.SetParallelism(max(1, writers/2))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1)
						if _, err := db.Put(ctx, run, keys[i&int64(len(keys)-1)], val); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	db, err := strata.OpenWithMode(b.TempDir(), strata.DurabilityNone)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	run := strata.NewRunID()
	keys := randomKeys(100_000)
	val := value.Bytes(make([]byte, 100))
	for _, k := range keys {
		if _, err := db.Put(ctx, run, k, val); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; b.Loop(); i++ {
		if _, err := db.Get(ctx, run, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransaction(b *testing.B) {
	val := value.Bytes(make([]byte, 100))
	b.Run("put", func(b *testing.B) {
		db, err := strata.OpenWithMode(b.TempDir(), strata.DurabilityNone)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run := strata.NewRunID()
		keys := randomKeys(1 << 16)
		for i := 0; b.Loop(); i++ {
			k := keys[i&(len(keys)-1)]
			if err := db.Transaction(ctx, run, func(tx *strata.Txn) error { return tx.Put(k, val) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rmw", func(b *testing.B) {
		db, err := strata.OpenWithMode(b.TempDir(), strata.DurabilityNone)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		run := strata.NewRunID()
		keys := randomKeys(1 << 14)
		for _, k := range keys {
			if _, err := db.Put(ctx, run, k, val); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; b.Loop(); i++ {
			k := keys[i&(len(keys)-1)]
			err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
				if _, err := tx.Get(k); err != nil {
					return err
				}
				return tx.Put(k, val)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
