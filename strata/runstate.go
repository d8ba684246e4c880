package strata

import (
	"cmp"
	"runtime"
	"sync"
	"sync/atomic"
)

// runState is a run's commit lock and what it guards. Commits of one run
// validate and apply under the lock; commits of different runs proceed in
// parallel.
//
// A run's state lives in the database's runStates while something uses it
// (see runStates.acquire) and for a while after; an idle state is dropped
// by a sweep, so that a process that touches many runs over its life does
// not keep a state for each. Nothing in it is lost by that: the lock and
// the queue are free and empty when no one uses the state, the horizon is
// loaded again from the store, and a new state's last starts at a version
// at or above every commit the run has had.
type runState struct {
	mu sync.Mutex
	// last is at or above the version of the run's latest commit, and
	// equal to it once the run has committed since the state was created:
	// every commit of the run is at or below it. Until lastSet, it is
	// unknown: the first holder of the lock sets it to the highest version
	// applied then (see Database.applyReq), which is at or above every
	// commit of the run through an earlier state, since that state was
	// dropped only once all its users had finished.
	last    uint64
	lastSet bool

	// queue holds the commit requests waiting for the lock (see commitReq).
	qmu   sync.Mutex
	queue []*commitReq
	// spare is the lock holder's slice to swap with queue; guarded by mu.
	spare []*commitReq

	// horizon is the run's GC horizon (see Database.GC), valid once
	// horizonLoaded is set. It only grows, and is stored before any version
	// is removed; readers load it after their read.
	horizon       atomic.Uint64
	horizonLoaded atomic.Bool

	// eventTail is one more than a length of the run's event log head past
	// which the run stores no event, as a check or an append found (0:
	// none known); see Database.checkEventTail.
	eventTail atomic.Uint64

	// gc holds a token while a GC pass of the run runs: passes take turns.
	gc chan struct{}

	// refs counts the users of the state (acquire to release); -1 once a
	// sweep dropped it, after which no one can acquire it. used is set by
	// acquire and cleared by a sweep: a state is dropped only when a whole
	// sweep interval passed without a user.
	refs atomic.Int64
	used atomic.Bool
}

// release ends a use of the state begun by acquire.
func (rs *runState) release() { rs.refs.Add(-1) }

// runStates maps each run in use to its state.
type runStates struct {
	m sync.Map // RunID -> *runState
	// n counts the states in m; a state created when n reaches sweepAt
	// (and at least minSweep, or defaultMinSweep if 0) sweeps (sweeping
	// holds sweepMu).
	n        atomic.Int64
	sweepAt  atomic.Int64
	minSweep int64 // set before use (tests lower it)
	sweepMu  sync.Mutex
}

// defaultMinSweep is the number of run states kept before the first
// sweep; after a sweep the next comes when the states have doubled.
const defaultMinSweep = 1024

// acquire returns run's state, creating it if needed, for use until
// release. Every commit of the run goes through the state it holds, so two
// users of one run at a time always hold the same state.
func (rs *runStates) acquire(run RunID) *runState {
	for {
		v, ok := rs.m.Load(run)
		if !ok {
			s := &runState{gc: make(chan struct{}, 1)}
			if v, ok = rs.m.LoadOrStore(run, s); !ok && rs.n.Add(1) >= max(cmp.Or(rs.minSweep, defaultMinSweep), rs.sweepAt.Load()) {
				rs.sweep(s)
			}
		}
		s := v.(*runState)
		for n := s.refs.Load(); n >= 0; n = s.refs.Load() {
			if s.refs.CompareAndSwap(n, n+1) {
				if !s.used.Load() {
					s.used.Store(true)
				}
				return s
			}
		}
		// A sweep dropped s and is removing it from the map: help, then
		// look again.
		rs.m.CompareAndDelete(run, s)
		runtime.Gosched()
	}
}

// sweep drops the states that no one used since the previous sweep and no
// one uses now (except keep, which its creator is about to acquire), then
// sets the next sweep for when the states have doubled.
func (rs *runStates) sweep(keep *runState) {
	if !rs.sweepMu.TryLock() {
		return // another sweep is running
	}
	defer rs.sweepMu.Unlock()
	rs.m.Range(func(k, v any) bool {
		s := v.(*runState)
		switch {
		case s == keep:
		case s.used.Load():
			s.used.Store(false) // a second chance
		case s.refs.CompareAndSwap(0, -1):
			rs.m.CompareAndDelete(k, s)
			rs.n.Add(-1)
		}
		return true
	})
	rs.sweepAt.Store(2 * rs.n.Load())
}
