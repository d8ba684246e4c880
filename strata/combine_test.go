package strata_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// Many goroutines committing to one run go through the run's combined
// commit path: every commit that reports success was applied exactly once,
// at its own version, with its own data; none is reported done before it is
// applied.
func TestCombinedCommitsOfOneRun(t *testing.T) {
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	run := strata.NewRunID()
	const goroutines, perG = 32, 400
	versions := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				k := binary.BigEndian.AppendUint64([]byte{byte(g)}, uint64(i))
				var v uint64
				var err error
				if i%2 == 0 {
					v, err = db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
						return tx.Put(k, value.Bytes(k))
					})
				} else {
					v, err = db.Put(ctx, run, k, value.Bytes(k))
				}
				if err != nil {
					t.Error(err)
					return
				}
				versions[g] = append(versions[g], v)
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for g := range goroutines {
		require.Len(t, versions[g], perG)
		for i, v := range versions[g] {
			require.NotZero(t, v, "goroutine %d commit %d reported success without a version", g, i)
			require.False(t, seen[v], "version %d reported twice", v)
			seen[v] = true
			k := binary.BigEndian.AppendUint64([]byte{byte(g)}, uint64(i))
			got, err := db.Get(ctx, run, k)
			require.NoError(t, err)
			require.Equal(t, v, got.Version)
			b, _ := got.Value.AsBytes()
			require.Equal(t, k, b)
		}
	}
	require.Equal(t, uint64(goroutines*perG), db.CurrentVersion())
}
