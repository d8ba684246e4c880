package harness

import (
	"time"

	"github.com/strata-db/strata/strata"
)

// Names of the event groups' workloads. Every one of them is Strata except
// the raw Pebble scan and the rate reference, so the names say what each
// does.
const (
	appendSystem    = "strata append"
	txnAppendSystem = "strata txn append"
	txnPutSystem    = "strata txn put"
	longLogSystem   = "strata append, long log"
	shortLogSystem  = "strata append, short logs"
	verifySystem    = "strata verify"
	scanSystem      = "pebble scan"
	verifyRate      = "1M events/s"
)

// Sizes of the event logs. The long logs of event-append-1m and
// event-verify hold Config.ReadKeys events, as many as the store of the
// read group: 1,000,000 by default.
const (
	// shortLogLen is the length of the short logs of event-append-1m.
	shortLogLen = 1000
	// shortLogRunsPerRep bounds the short logs event-append-1m loads for
	// each rep. A rep appends shortLogLen events to each in turn, so its
	// first 128,000 appends go to logs of 1K-2K events; a faster rep wraps
	// around and grows each by another 1K per 128,000 appends.
	shortLogRunsPerRep = 128
)

// eventGroups returns the event log groups: appends against a single-put
// transaction, appends at a long log against appends at short ones, and
// chain verification against a rate of 1M events/s.
//
// event-append runs three Strata workloads, each in a fresh database per
// rep: Database.AppendEvent (the sequence and previous hash taken under the
// run's commit lock), Txn.AppendEvent in a Database.Transaction, and the
// Transaction{Put} of txn-put-none; the target is on the direct append.
//
// event-append-1m appends to one run of a database loaded once with
// Config.ReadKeys events, and to runs of shortLogLen events in the same
// database, so that the two differ only in the log's length: the
// database is reopened after loading and every log's head read once, so
// all heads are in Strata's latest index (see eventLogs.prepare), and every
// rep starts once the database has settled.
//
// event-verify has no store to compare with but a rate: its reference
// workload sleeps 1 µs per event of the log, so every ratio to it is a rate
// in millions of events (or raw Pebble keys) per second.
func eventGroups() []Group {
	return []Group{{
		Name:     "event-append",
		Title:    "append of an event with a ~100-byte payload (SHA-256 chained) vs a transaction putting one fresh key, no sync, 1 writer",
		Baseline: txnPutSystem,
		Targets:  []Target{{System: appendSystem, Against: txnPutSystem, Metric: MedianLatency, Bound: 1.5}},
		Workloads: func(cfg Config) []Workload {
			put := strataTxnPut(cfg, strata.DurabilityNone, 1, false)
			put.System = txnPutSystem
			return []Workload{strataAppend(cfg, appendSystem, false), strataAppend(cfg, txnAppendSystem, true), put}
		},
	}, {
		Name:     "event-append-1m",
		Title:    "append of an event to a run holding 1M events (Config.ReadKeys) vs to runs holding 1K, one database, no sync, 1 writer",
		Baseline: shortLogSystem,
		Targets:  []Target{{System: longLogSystem, Against: shortLogSystem, Metric: MedianLatency, Bound: 1.2}},
		Workloads: func(cfg Config) []Workload {
			l := newEventLogs(cfg, cfg.ReadKeys, min(shortLogLen, cfg.ReadKeys), shortLogRunsPerRep)
			return []Workload{strataAppendLong(l, longLogSystem), strataAppendShort(l, shortLogSystem)}
		},
	}, {
		Name:     "event-verify",
		Title:    "verification of a run of 1M events (Config.ReadKeys) per op, hot cache; ratios to the reference are millions of events/s",
		Baseline: verifyRate,
		Targets:  []Target{{System: verifySystem, Against: verifyRate, Metric: Throughput, Bound: 1}},
		Workloads: func(cfg Config) []Workload {
			s := &verifyStores{cfg: cfg, n: cfg.ReadKeys}
			return []Workload{strataVerify(s, verifySystem), pebbleScanEvents(s, scanSystem), rateReference(verifyRate, s.n, time.Microsecond)}
		},
	}}
}
