package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
)

// ErrHistoryTrimmed: a read asked for a version older than what version
// garbage collection kept for its run (see Database.GC).
var ErrHistoryTrimmed = errors.New("strata: version removed by garbage collection")

// RetentionMode says which old versions version GC keeps.
type RetentionMode uint8

// Retention modes.
const (
	// RetainAll keeps every version: the default.
	RetainAll RetentionMode = iota
	// RetainLast keeps the newest Retention.Last versions of each key.
	RetainLast
	// RetainFor keeps the versions written within Retention.For of the GC
	// pass, plus each key's newest version older than that (its value at the
	// cutoff).
	RetainFor
)

// String returns the mode's name.
func (m RetentionMode) String() string {
	switch m {
	case RetainAll:
		return "all"
	case RetainLast:
		return "last"
	case RetainFor:
		return "for"
	}
	return fmt.Sprintf("RetentionMode(%d)", uint8(m))
}

// Retention is a run's version retention policy. It applies to KV keys,
// state cells and the event log's head record (one version per append);
// event keys themselves are never removed. Whatever the policy, the
// newest version of every key stays.
type Retention struct {
	Mode RetentionMode
	Last int           // RetainLast: versions kept per key, >= 1
	For  time.Duration // RetainFor: age kept, > 0
}

// KeepAll returns the default policy: keep every version.
func KeepAll() Retention { return Retention{} }

// KeepLast returns the policy that keeps the newest n versions of each key
// (a deletion's tombstone counts as one).
func KeepLast(n int) Retention { return Retention{Mode: RetainLast, Last: n} }

// KeepFor returns the policy that keeps the versions younger than d, plus
// each key's newest version older than d.
func KeepFor(d time.Duration) Retention { return Retention{Mode: RetainFor, For: d} }

// Validate reports whether r is a usable policy.
func (r Retention) Validate() error {
	switch r.Mode {
	case RetainAll:
		if r.Last != 0 || r.For != 0 {
			return fmt.Errorf("%w: retention mode all takes no parameter", ErrInvalidOptions)
		}
	case RetainLast:
		if r.Last < 1 || r.For != 0 {
			return fmt.Errorf("%w: retention keep-last needs Last >= 1 and no For, got %d, %v", ErrInvalidOptions, r.Last, r.For)
		}
	case RetainFor:
		if r.For <= 0 || r.Last != 0 {
			return fmt.Errorf("%w: retention keep-for needs For > 0 and no Last, got %v, %d", ErrInvalidOptions, r.For, r.Last)
		}
	default:
		return fmt.Errorf("%w: unknown retention mode %d", ErrInvalidOptions, r.Mode)
	}
	return nil
}

// Run metadata keys (TagRunMeta) of version GC; see docs/format.md.
var (
	retentionKey = []byte("retention")
	horizonKey   = []byte("gc-horizon")
)

// Retention record: version (1), mode, parameter u64 BE (Last, or For in
// nanoseconds; 0 for RetainAll). Horizon record: version (1), horizon u64 BE.
const (
	retentionRecordVersion = 1
	retentionRecordLen     = 10
	horizonRecordVersion   = 1
	horizonRecordLen       = 9
)

func appendRetention(dst []byte, r Retention) []byte {
	var p uint64
	switch r.Mode {
	case RetainLast:
		p = uint64(r.Last)
	case RetainFor:
		p = uint64(r.For)
	}
	dst = append(dst, retentionRecordVersion, byte(r.Mode))
	return binary.BigEndian.AppendUint64(dst, p)
}

func decodeRetention(b []byte) (Retention, error) {
	if len(b) != retentionRecordLen || b[0] != retentionRecordVersion {
		return Retention{}, fmt.Errorf("%w: retention record %x", ErrCorruption, b)
	}
	p := binary.BigEndian.Uint64(b[2:])
	var r Retention
	switch RetentionMode(b[1]) {
	case RetainAll:
		if p != 0 {
			return Retention{}, fmt.Errorf("%w: retention record %x", ErrCorruption, b)
		}
	case RetainLast:
		if p > math.MaxInt { // every count Validate accepts fits
			return Retention{}, fmt.Errorf("%w: retention record %x", ErrCorruption, b)
		}
		r = KeepLast(int(p))
	case RetainFor:
		r = KeepFor(time.Duration(p))
	default:
		return Retention{}, fmt.Errorf("%w: retention record %x", ErrCorruption, b)
	}
	if err := r.Validate(); err != nil {
		return Retention{}, fmt.Errorf("%w: retention record %x", ErrCorruption, b)
	}
	return r, nil
}

func appendHorizon(dst []byte, h uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, horizonRecordVersion), h)
}

func decodeHorizon(b []byte) (uint64, error) {
	if len(b) != horizonRecordLen || b[0] != horizonRecordVersion {
		return 0, fmt.Errorf("%w: GC horizon record %x", ErrCorruption, b)
	}
	return binary.BigEndian.Uint64(b[1:]), nil
}

// SetRetention sets run's retention policy; it is stored with the run and
// survives restarts. It takes effect at the next GC of the run.
func (db *Database) SetRetention(ctx context.Context, run RunID, r Retention) error {
	if err := run.Validate(); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if err := db.enter(ctx); err != nil {
		return err
	}
	defer db.leave()
	w := []mvcc.Write{{Run: run, Tag: keyenc.TagRunMeta, Key: retentionKey, Kind: keyenc.KindBytes, Payload: appendRetention(nil, r)}}
	_, err := db.commit(ctx, run, w, nil, db.dur.Mode())
	return err
}

// Retention returns run's retention policy (KeepAll if none was set).
func (db *Database) Retention(ctx context.Context, run RunID) (Retention, error) {
	if err := run.Validate(); err != nil {
		return Retention{}, err
	}
	if err := db.enter(ctx); err != nil {
		return Retention{}, err
	}
	defer db.leave()
	return db.retention(run)
}

func (db *Database) retention(run RunID) (Retention, error) {
	rec, found, err := db.store.GetLatest(keyenc.RunID(run), keyenc.TagRunMeta, retentionKey)
	if err != nil || !found {
		return Retention{}, err
	}
	b, err := bytesPayload(rec) // Strata never deletes it: a tombstone is corruption
	if err != nil {
		return Retention{}, fmt.Errorf("retention policy: %w", err)
	}
	return decodeRetention(b)
}

// GCStats reports what a GC pass did.
type GCStats struct {
	Keys    int64 // KV keys and state cells examined
	Removed int64 // versions removed (of those and of the event log head)
	// Horizon is the run's GC horizon after the pass, also after a pass
	// that ended with an error once it had begun (its deadline, say), since
	// what it removed already raised it. It is 0 while no pass of the run
	// has removed anything yet, and when the pass did not begin (or the
	// horizon could not be read after a storage failure).
	Horizon uint64
}

// GC removes the versions of run's KV keys, state cells and event log head
// that its retention policy does not keep. Event keys are never removed,
// and the newest version of every key stays.
//
// Reads stay exact. GC never removes a version that the snapshot of an open
// transaction (of any run) reads, nor one the visible version reads: open
// transactions keep reading what they saw, and a long-lived one holds back
// GC until it ends. GC records the run's horizon, the lowest version at
// which every read still sees what it saw before, and stores it (synced)
// before removing anything. A GetAt below it returns ErrHistoryTrimmed
// (History pages list the versions still stored); a direct read at the
// current version that GC overtakes starts again by itself. A pass ends by
// removing the older versions of the horizon record itself (only the newest
// is ever read). With the default policy, GC removes nothing. Passes of one
// run take turns (a pass waits for the one running, bounded by ctx), so
// each version removed is counted by one pass.
func (db *Database) GC(ctx context.Context, run RunID) (GCStats, error) {
	if err := run.Validate(); err != nil {
		return GCStats{}, err
	}
	if err := db.enter(ctx); err != nil {
		return GCStats{}, err
	}
	defer db.leave()
	rs := db.runs.acquire(run) // held for the pass: passes of the run share its token
	defer rs.release()
	gc := rs.gc
	wait, cancel := clockBound(ctx)
	defer cancel()
	select {
	case gc <- struct{}{}:
		defer func() { <-gc }()
	case <-wait.Done():
		return GCStats{}, wait.Err()
	}
	pol, err := db.retention(run)
	if err != nil {
		return GCStats{}, err
	}
	var st GCStats
	if pol.Mode == RetainAll {
		st.Horizon, err = db.gcHorizon(run)
		return st, err
	}
	cutoff := time.Now().Add(-pol.For).UnixNano()
	// Versions above the oldest open transaction's snapshot, or above the
	// visible version (applied, waiting for an fsync) if that is older, are
	// kept on top of the policy, and so is the newest version at or below
	// it. So the horizon never passes an open snapshot or the visible
	// version: open transactions and current reads see exactly what they
	// saw before. (Transactions that begin later read at or above the
	// visible version read here; see txnPool.get.)
	pin := db.txns.oldestPin(db.store.Visible())
	keep := retentionKeep(pol, pin, cutoff)
	publish := func(h uint64) error {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		return db.raiseHorizon(run, h)
	}
	// Run metadata: only the event log head's old versions (one per append)
	// follow the policy here; the retention record keeps its versions, and
	// the horizon record's old ones go after this loop.
	keepMeta := func(key []byte, i int, v mvcc.VersionMeta) bool {
		return string(key) != string(eventHeadKey) || keep(key, i, v)
	}
	// A pass cut short still reports the horizon (raised by what it
	// removed, if anything); the error it ends with is the one returned.
	cutShort := func(err error) (GCStats, error) {
		st.Horizon, _ = db.gcHorizon(run)
		return st, err
	}
	for _, p := range []struct {
		tag  keyenc.Tag
		keep func([]byte, int, mvcc.VersionMeta) bool
	}{{keyenc.TagKV, keep}, {keyenc.TagState, keep}, {keyenc.TagRunMeta, keepMeta}} {
		ps, err := db.store.Prune(keyenc.RunID(run), p.tag, nil, p.keep, publish)
		if p.tag != keyenc.TagRunMeta {
			st.Keys += ps.Keys
		}
		st.Removed += ps.Removed
		if err != nil {
			return cutShort(err)
		}
	}
	// Each pass that removes something commits the horizon record (once per
	// chunk of removals that raises it). Only its newest version is ever
	// read (loadHorizonLocked), so the older ones are removed too, lest
	// they pile up pass after pass; that changes no read, so it needs no
	// horizon of its own. They are not counted in st.Removed.
	onlyNewest := func(key []byte, i int, _ mvcc.VersionMeta) bool {
		return string(key) != string(horizonKey) || i == 0
	}
	noReads := func(uint64) error { return nil }
	if _, err := db.store.Prune(keyenc.RunID(run), keyenc.TagRunMeta, horizonKey, onlyNewest, noReads); err != nil {
		return cutShort(err)
	}
	// A pass that found nothing to remove never looked at the deadline
	// (publish does, before each removal): it does not succeed after it.
	if err := ctxErr(ctx); err != nil {
		return cutShort(err)
	}
	st.Horizon, err = db.gcHorizon(run)
	return st, err
}

// retentionKeep returns the keep function of mvcc.Store.Prune for policy
// pol (KeepLast or KeepFor, with cutoff the oldest timestamp KeepFor keeps):
// every version above pin, then the policy's versions at or below it (for
// KeepFor, those at or after the cutoff and the first one before it, the
// value at the cutoff; every older version goes, even one whose timestamp is
// later, after a clock that went back across a restart).
func retentionKeep(pol Retention, pin uint64, cutoff int64) func([]byte, int, mvcc.VersionMeta) bool {
	var below int   // versions at or below pin kept so far
	var passed bool // the one at the cutoff was kept
	return func(_ []byte, i int, v mvcc.VersionMeta) bool {
		if i == 0 {
			below, passed = 0, false
		}
		switch {
		case v.Version > pin:
			return true
		case pol.Mode == RetainLast:
			below++
			return below <= pol.Last
		case passed:
			return false
		case v.Timestamp < cutoff:
			passed = true
		}
		return true
	}
}

// gcHorizon returns run's GC horizon: reads at lower versions may miss
// removed versions. It is loaded from the store on first use.
func (db *Database) gcHorizon(run RunID) (uint64, error) {
	rs := db.runs.acquire(run) // commitBuilt below acquires this same state
	defer rs.release()
	if rs.horizonLoaded.Load() {
		return rs.horizon.Load(), nil
	}
	// Load it under the run's lock, through the commit queue (a request
	// that writes nothing), so that no commit raises it meanwhile.
	_, err := db.commitBuilt(context.Background(), run, func(uint64) ([]mvcc.Write, error) {
		return nil, db.loadHorizonLocked(run, rs)
	}, DurabilityNone)
	if err != nil {
		return 0, err
	}
	return rs.horizon.Load(), nil
}

// loadHorizonLocked loads the stored horizon into rs, under the run's lock
// (from a commit request's build function).
func (db *Database) loadHorizonLocked(run RunID, rs *runState) error {
	if rs.horizonLoaded.Load() {
		return nil
	}
	rec, found, err := db.store.GetLatest(keyenc.RunID(run), keyenc.TagRunMeta, horizonKey)
	if err != nil {
		return err
	}
	if found {
		b, err := bytesPayload(rec) // Strata never deletes it: a tombstone is corruption
		if err != nil {
			return fmt.Errorf("GC horizon: %w", err)
		}
		h, err := decodeHorizon(b)
		if err != nil {
			return err
		}
		rs.horizon.Store(h)
	}
	rs.horizonLoaded.Store(true)
	return nil
}

// raiseHorizon makes run's horizon at least h: it commits the new horizon
// with an fsync, then publishes it to readers. Versions may be removed only
// after it returns.
func (db *Database) raiseHorizon(run RunID, h uint64) error {
	rs := db.runs.acquire(run) // commitBuilt below acquires this same state
	defer rs.release()
	_, err := db.commitBuilt(context.Background(), run, func(uint64) ([]mvcc.Write, error) {
		// Under the run's lock, with every commit of the run applied.
		if err := db.loadHorizonLocked(run, rs); err != nil || h <= rs.horizon.Load() {
			return nil, err // nothing to raise
		}
		// Publish before the lock is released: a reader that could see a
		// removal checks the horizon after its read, and removals start
		// only after this function returns.
		rs.horizon.Store(h)
		return []mvcc.Write{{Run: run, Tag: keyenc.TagRunMeta, Key: horizonKey, Kind: keyenc.KindBytes, Payload: appendHorizon(nil, h)}}, nil
	}, DurabilityStrict)
	return err
}

// trimmed reports whether a read of run at version at may have missed
// versions removed by GC; call it after the read.
func (db *Database) trimmed(run RunID, at uint64) (bool, error) {
	h, err := db.gcHorizon(run)
	return at < h, err
}

// trimmedError is the error of a read at version at below run's horizon.
func trimmedError(run RunID, at, horizon uint64) error {
	return fmt.Errorf("%w: run %s read at version %d, GC horizon %d", ErrHistoryTrimmed, run, at, horizon)
}
