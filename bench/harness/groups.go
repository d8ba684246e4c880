package harness

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-db/strata/strata"
)

// latencyTarget bounds Strata's median latency to bound times raw Pebble's.
func latencyTarget(bound float64) Target {
	return Target{System: "strata", Against: "pebble", Metric: MedianLatency, Bound: bound}
}

// throughputTarget bounds Strata's throughput from below, to bound times
// against's.
func throughputTarget(against string, bound float64) Target {
	return Target{System: "strata", Against: against, Metric: Throughput, Bound: bound}
}

// Groups returns every comparison group, in the order cmd/compare runs them:
// the single-operation groups, then the transaction groups (txnGroups),
// then the event log groups (eventGroups). The targets are those of the
// design's performance card.
func Groups() []Group {
	latency, throughput := latencyTarget, throughputTarget
	noSync := func(mode strata.DurabilityMode) func(Config) []Workload {
		return func(cfg Config) []Workload {
			return []Workload{strataPut(cfg, mode, 1), pebblePut(cfg, pebble.NoSync, 1), badgerPut(false, 1)}
		}
	}
	strict := func(goroutines int, withBadger bool) func(Config) []Workload {
		return func(cfg Config) []Workload {
			ws := []Workload{strataPut(cfg, strata.DurabilityStrict, goroutines), pebblePut(cfg, pebble.Sync, goroutines)}
			if withBadger {
				ws = append(ws, badgerPut(true, goroutines))
			} else {
				ws = append(ws, pebbleShapedPut(cfg, pebble.Sync, goroutines))
			}
			return ws
		}
	}
	groups := []Group{{
		Name:      "put-none",
		Title:     "single-key put of a fresh key, no sync, 1 writer",
		Baseline:  "pebble",
		Targets:   []Target{latency(2.5), throughput("badger", 3)},
		Workloads: noSync(strata.DurabilityNone),
	}, {
		Name:      "put-batched",
		Title:     "single-key put of a fresh key, Batched durability vs no sync, 1 writer",
		Baseline:  "pebble",
		Targets:   []Target{latency(2.5), throughput("badger", 3)},
		Workloads: noSync(strata.DurabilityBatched),
	}, {
		Name:      "put-strict-1",
		Title:     "single-key put of a fresh key, fsync per commit, 1 writer",
		Sync:      true,
		Baseline:  "pebble",
		Targets:   []Target{latency(1.15)},
		Workloads: strict(1, false),
	}, {
		Name:      "put-strict-8",
		Title:     "single-key put of a fresh key, fsync per commit, 8 concurrent writers",
		Sync:      true,
		Baseline:  "pebble",
		Targets:   []Target{throughput("badger", 3)},
		Workloads: strict(8, true),
	}, {
		Name:      "put-strict-64",
		Title:     "single-key put of a fresh key, fsync per commit, 64 concurrent writers",
		Sync:      true,
		Baseline:  "pebble",
		Targets:   []Target{throughput("pebble", 0.85)},
		Workloads: strict(64, false),
	}, {
		Name:     "get-1m",
		Title:    "point get of a random existing key, loaded store, hot cache, 1 reader",
		Baseline: "pebble",
		Targets:  []Target{latency(1.3)},
		Workloads: func(cfg Config) []Workload {
			keys := newKeySet(cfg.ReadKeys)
			return []Workload{strataGet(cfg, keys), pebbleGet(cfg, keys)}
		},
	}}
	groups = append(groups, txnGroups()...)
	return append(groups, eventGroups()...)
}
