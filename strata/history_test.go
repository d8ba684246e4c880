package strata_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// observed is what one transaction saw and did, recorded as it ran.
type observed struct {
	worker  int
	snap    uint64
	version uint64            // commit version, 0 for read-only
	reads   map[string]string // key -> value read ("" = absent)
	writes  map[string]string // key -> value written ("" = deleted)
	lists   map[string][]string
}

// TestHistoryIsSerializableInCommitOrder runs random transactions from
// several goroutines, records each committed transaction's snapshot, reads,
// writes and commit version, and then checks the history (the pattern of
// bbolt's concurrent read/write test):
//   - versions are unique and grow in each goroutine's program order;
//   - every committed transaction's reads and listings equal the state just
//     before its commit version (serializable in commit order) and the state
//     at its snapshot (no fractured reads);
//   - reading a key twice gives the same answer (repeatable reads, checked
//     while running).
//
// Besides the mixed workers, blind writers (transactions that only write,
// which never conflict) commit into the same keys, so that a lock holder
// often applies readers' and blind writers' commits in one pass, and a
// reader must be validated against every blind write applied before it. It
// runs without sync and with Strict (where the holder waits for the fsync on
// behalf of the commits it applied).
func TestHistoryIsSerializableInCommitOrder(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		db, run := openTxnDB(t)
		historyRun(t, db, run, 300)
	})
	t.Run("strict", func(t *testing.T) {
		db, err := strata.OpenWith(strata.Options{Path: t.TempDir(), Durability: strata.DurabilityStrict})
		require.NoError(t, err)
		defer db.Close()
		historyRun(t, db, strata.NewRunID(), 100)
	})
}

func historyRun(t *testing.T, db *strata.Database, run strata.RunID, txns int) {
	const workers, blind, keys = 8, 4, 16
	if testing.Short() {
		txns = min(txns, 80)
	}
	var mu sync.Mutex
	var history []observed
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range txns {
				var o observed
				v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
					o = observed{worker: w, snap: tx.Snapshot(), reads: map[string]string{}, writes: map[string]string{}, lists: map[string][]string{}}
					for range 1 + rng.IntN(6) {
						k := fmt.Sprintf("k%02d", rng.IntN(keys))
						switch op := rng.IntN(10); {
						case op < 5: // read, twice
							got := readVal(t, tx, k)
							require.Equal(t, got, readVal(t, tx, k), "repeatable read")
							if _, mine := o.writes[k]; !mine {
								if prev, ok := o.reads[k]; ok {
									require.Equal(t, prev, got, "repeatable read of %s", k)
								}
								o.reads[k] = got
							}
						case op < 8:
							val := fmt.Sprintf("w%d-%d-%s", w, i, k)
							require.NoError(t, tx.Put([]byte(k), value.String(val)))
							o.writes[k] = val
						case op < 9:
							_, err := tx.Delete([]byte(k))
							require.NoError(t, err)
							o.writes[k] = ""
						default:
							prefix := fmt.Sprintf("k%d", rng.IntN(2))
							ks, err := tx.List([]byte(prefix))
							require.NoError(t, err)
							if !hasOwnWrite(o.writes, prefix) {
								o.lists[prefix] = toStrings(ks)
							}
						}
					}
					return nil
				})
				if err != nil {
					require.ErrorIs(t, err, strata.ErrConflict)
					continue
				}
				o.version = v
				if len(o.writes) == 0 {
					o.version = 0
				}
				mu.Lock()
				history = append(history, o)
				mu.Unlock()
			}
		})
	}
	for w := workers; w < workers+blind; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range txns {
				o := observed{worker: w, reads: map[string]string{}, writes: map[string]string{}, lists: map[string][]string{}}
				v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) error {
					o.snap = tx.Snapshot()
					for range 1 + rng.IntN(2) {
						k := fmt.Sprintf("k%02d", rng.IntN(keys))
						val := fmt.Sprintf("b%d-%d-%s", w, i, k)
						if err := tx.Put([]byte(k), value.String(val)); err != nil {
							return err
						}
						o.writes[k] = val
					}
					return nil
				})
				require.NoError(t, err, "blind writes never conflict")
				o.version = v
				mu.Lock()
				history = append(history, o)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	checkHistory(t, history)
}

func readVal(t *testing.T, tx *strata.Txn, k string) string {
	got, err := tx.Get([]byte(k))
	if err != nil {
		require.ErrorIs(t, err, strata.ErrNotFound)
		return ""
	}
	s, ok := got.Value.AsString()
	require.True(t, ok)
	return s
}

func hasOwnWrite(writes map[string]string, prefix string) bool {
	for k := range writes {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

func toStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// keyHistory is the committed values of one key, by version.
type keyHistory []struct {
	version uint64
	val     string
}

func (h keyHistory) at(v uint64) string {
	i := sort.Search(len(h), func(i int) bool { return h[i].version > v })
	if i == 0 {
		return ""
	}
	return h[i-1].val
}

func checkHistory(t *testing.T, history []observed) {
	t.Helper()
	var writers []observed
	lastByWorker := map[int]uint64{}
	seen := map[uint64]bool{}
	for _, o := range history {
		if o.version == 0 {
			continue
		}
		require.False(t, seen[o.version], "version %d committed twice", o.version)
		seen[o.version] = true
		writers = append(writers, o)
	}
	slices.SortFunc(writers, func(a, b observed) int { return int(a.version) - int(b.version) })
	// Program order: a goroutine's later commit has a higher version.
	byWorker := map[int][]observed{}
	for _, o := range history {
		byWorker[o.worker] = append(byWorker[o.worker], o)
	}
	for w, os := range byWorker {
		for _, o := range os {
			if o.version != 0 {
				require.Greater(t, o.version, lastByWorker[w], "worker %d: versions must grow", w)
				lastByWorker[w] = o.version
			}
		}
	}
	state := map[string]keyHistory{}
	for _, o := range writers {
		for k, v := range o.writes {
			state[k] = append(state[k], struct {
				version uint64
				val     string
			}{o.version, v})
		}
	}
	stateAt := func(k string, v uint64) string { return state[k].at(v) }
	listAt := func(prefix string, v uint64) []string {
		var out []string
		for k := range state {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix && stateAt(k, v) != "" {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	checked := 0
	for _, o := range history {
		points := []uint64{o.snap} // no fractured reads: all reads from the snapshot
		if o.version != 0 {
			points = append(points, o.version-1) // serializable at the commit point
		}
		for _, at := range points {
			for k, got := range o.reads {
				require.Equal(t, stateAt(k, at), got, "worker %d txn snap %d commit %d: read of %s vs state at %d", o.worker, o.snap, o.version, k, at)
			}
			for prefix, got := range o.lists {
				want := listAt(prefix, at)
				if len(want) == 0 && len(got) == 0 {
					continue
				}
				require.Equal(t, want, got, "listing %q vs state at %d", prefix, at)
			}
		}
		checked++
	}
	t.Logf("checked %d committed transactions (%d with writes)", checked, len(writers))
}
