package harness

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-db/strata/strata"
)

// Names of the two Strata workloads of txn-disjoint-runs.
const (
	oneRunSystem  = "strata 1 run/1 goroutine"
	twoRunsSystem = "strata 2 runs/2 goroutines"
)

// runPerWriterSystem names txn-strict-64's Strata workload with a run per
// writer (the targeted one shares one run).
const runPerWriterSystem = "strata, a run per writer"

// pebbleBatchedSystem names txn-put-batched's reference workload: raw Pebble
// writing Strata's records with the fsyncs of Batched mode.
const pebbleBatchedSystem = "pebble, strata records, batched syncs"

// contendedGoroutines is the number of goroutines incrementing the one key
// of txn-contended.
const contendedGoroutines = 4

// txnGroups returns the transaction groups: Strata's Database.Transaction
// against raw Pebble's single operations (which have no transactions) and
// Badger's DB.Update.
func txnGroups() []Group {
	put := func(mode strata.DurabilityMode) func(Config) []Workload {
		return func(cfg Config) []Workload {
			ws := []Workload{strataTxnPut(cfg, mode, 1, false), pebblePut(cfg, pebble.NoSync, 1), badgerPut(false, 1), pebbleShapedPut(cfg, pebble.NoSync, 1)}
			if mode == strata.DurabilityBatched {
				ws = append(ws, pebbleBatchedPut(cfg))
			}
			return ws
		}
	}
	strict := func(goroutines int, withBadger bool) func(Config) []Workload {
		return func(cfg Config) []Workload {
			ws := []Workload{strataTxnPut(cfg, strata.DurabilityStrict, goroutines, false), pebblePut(cfg, pebble.Sync, goroutines)}
			if withBadger {
				ws = append(ws, badgerPut(true, goroutines))
			} else {
				// The target is on one shared run, where the run's commit
				// lock applies the writers' batches one at a time; with a
				// run per writer they reach Pebble's pipeline concurrently.
				perRun := strataTxnPut(cfg, strata.DurabilityStrict, goroutines, true)
				perRun.System = runPerWriterSystem
				ws = append(ws, pebbleShapedPut(cfg, pebble.Sync, goroutines), perRun, pebbleOrderedPut(cfg, pebble.Sync, goroutines))
			}
			return ws
		}
	}
	readWrite := func(reads, pebbleReads int) func(Config) []Workload {
		return func(cfg Config) []Workload {
			keys := newKeySet(cfg.TxnKeys)
			return []Workload{
				strataTxnReadWrite(cfg, keys, reads),
				pebbleReadWrite(cfg, keys, pebbleReads, reads),
				badgerReadWrite(keys, reads),
			}
		}
	}
	return []Group{{
		Name:      "txn-put-none",
		Title:     "transaction putting one fresh key, no sync, 1 writer",
		Baseline:  "pebble",
		Targets:   []Target{latencyTarget(2.5), throughputTarget("badger", 3)},
		Workloads: put(strata.DurabilityNone),
	}, {
		Name:      "txn-put-batched",
		Title:     "transaction putting one fresh key, Batched durability vs no sync, 1 writer",
		Baseline:  "pebble",
		Targets:   []Target{latencyTarget(2.5), throughputTarget("badger", 3)},
		Workloads: put(strata.DurabilityBatched),
	}, {
		Name:      "txn-rmw",
		Title:     "read-modify-write transaction on a random loaded key vs a raw Set of it, no sync, 1 writer",
		Baseline:  "pebble",
		Targets:   []Target{latencyTarget(3)},
		Workloads: readWrite(1, 0),
	}, {
		Name:      "txn-10r1w",
		Title:     "transaction of 10 reads of random loaded keys and 1 write, no sync, 1 writer",
		Baseline:  "pebble",
		Workloads: readWrite(10, 10),
	}, {
		Name:      "txn-strict-8",
		Title:     "transaction putting one fresh key, fsync per commit, 8 concurrent writers",
		Sync:      true,
		Baseline:  "pebble",
		Targets:   []Target{throughputTarget("badger", 3)},
		Workloads: strict(8, true),
	}, {
		Name:      "txn-strict-64",
		Title:     "transaction putting one fresh key, fsync per commit, 64 concurrent writers",
		Sync:      true,
		Baseline:  "pebble",
		Targets:   []Target{throughputTarget("pebble", 0.85)},
		Workloads: strict(64, false),
	}, {
		Name:     "txn-contended",
		Title:    "read-modify-write (+1) transactions on one key, 4 goroutines, no sync, retried on conflict; throughput is commits/s",
		Baseline: "badger",
		Workloads: func(cfg Config) []Workload {
			return []Workload{strataContended(cfg, contendedGoroutines), badgerContended(contendedGoroutines)}
		},
	}, {
		Name:     "txn-disjoint-runs",
		Title:    "transaction putting one fresh key, no sync: 1 goroutine in 1 run vs 2 goroutines in a run each",
		Baseline: oneRunSystem,
		Workloads: func(cfg Config) []Workload {
			one := strataTxnPut(cfg, strata.DurabilityNone, 1, false)
			one.System = oneRunSystem
			two := strataTxnPut(cfg, strata.DurabilityNone, 2, true)
			two.System = twoRunsSystem
			return []Workload{one, two}
		},
	}}
}
