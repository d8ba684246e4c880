package strata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/strata-db/strata/durability"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/pebbleadapter"
)

// Database is an open Strata database. It is safe for concurrent use by any
// number of goroutines.
//
// # Lifecycle
//
// Open (or OpenWith, OpenEphemeral, Builder.Open) returns an open database.
// Shutdown stops it from accepting new operations, waits for those in
// flight (bounded by its context) and syncs everything acknowledged. Close
// does the same without a bound, then releases the files; it is idempotent.
// Every later call returns ErrClosed, except three: a Txn begun before runs
// to its end (Shutdown and Close wait for it); Shutdown may be called again,
// to wait longer after its context ended (once Close has begun, it waits
// for Close to finish, then returns nil, or ErrFailed for a failed
// database); and
// Close returns its first result. A call whose arguments are invalid
// reports that first.
//
// # Failure
//
// A WAL or MANIFEST write or sync failure (a full disk, EIO), or a failed
// flush, in any durability mode, is never reported as success and never
// exits the process or stalls commits: the commit
// that hit it returns an error matching ErrFailed and wrapping the cause,
// and so does every later call, on the database or on a Txn begun before,
// until the database is closed and reopened (Close too returns the
// failure; a failed database reports ErrFailed rather than ErrClosed). See
// docs/durability.md, "The store fence".
type Database struct {
	opts      Options
	persist   PersistenceMode
	tempDir   string // removed on Close, for OpenTemp
	adb       *pebbleadapter.DB
	store     *mvcc.Store
	dur       *durability.Manager
	runs      runStates
	closeOnce sync.Once
	closeErr  error
	closeDone chan struct{} // closed once Close has finished
	closed    atomic.Bool   // Close has begun

	txns txnPool
	// walBase is Pebble's count of WAL bytes written when Open finished:
	// it counts the WALs Open replayed (see StorageMetrics.WALBytesWritten).
	walBase uint64

	// Transaction counters (see TxnMetrics).
	txnStarted, txnActive, txnCommitted, txnAborted atomic.Int64
}

// Open opens or creates the database at path in Batched mode.
func Open(path string) (*Database, error) {
	return OpenWith(Options{Path: path})
}

// OpenWithMode opens or creates the database at path with the given
// durability mode.
func OpenWithMode(path string, mode DurabilityMode) (*Database, error) {
	return OpenWith(Options{Path: path, Durability: mode})
}

// OpenEphemeral opens a fresh in-memory database: no files, nothing survives
// Close.
func OpenEphemeral() (*Database, error) {
	return OpenWith(Options{Ephemeral: true})
}

// OpenWith opens or creates a database with the given options. It recovers
// the committed versions and continues above them (at the next version after
// Close, above the version reservation after a crash). A directory held by
// another open database returns ErrLocked at once.
func OpenWith(opts Options) (*Database, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	aopts := pebbleadapter.Options{
		Dir:          o.Path,
		FS:           o.FS,
		MemTableSize: o.MemTableSize,
		CacheSize:    o.CacheSize,
		Logger:       *o.Logger,
	}
	persist := PersistenceDisk
	if o.Ephemeral {
		aopts.FS = pebbleadapter.NewMemFS()
		persist = PersistenceEphemeral
	}
	adb, err := pebbleadapter.Open(aopts)
	if err != nil {
		return nil, err
	}
	store, err := mvcc.OpenWithIndex(adb, o.CacheSize) // the latest index scales with the block cache
	if err != nil {
		_ = adb.Close()
		return nil, err
	}
	db := &Database{opts: o, persist: persist, adb: adb, store: store, closeDone: make(chan struct{}),
		walBase: adb.Metrics().WAL.BytesWritten}
	db.dur = durability.NewManager(o.Durability,
		durability.BatchedConfig{Interval: o.SyncInterval, MaxPending: o.MaxPendingCommits},
		adb.SyncBarrier, store.Applied, store.Visible())
	return db, nil
}

// enter admits one operation: ctx must be live and the database open.
func (db *Database) enter(ctx context.Context) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	return db.adb.Enter()
}

// ctxErr is mvcc.ContextErr: ctx.Err(), or context.DeadlineExceeded as
// soon as ctx's deadline has passed.
func ctxErr(ctx context.Context) error { return mvcc.ContextErr(ctx) }

// clockBound returns ctx with a timer of its own for its deadline, for a
// wait on ctx.Done: the wait then ends when the deadline passes by the
// clock, as ctxErr sees it, even if ctx's own timer fires late.
func clockBound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d)
	}
	return ctx, func() {}
}

func (db *Database) leave() { db.adb.Leave() }

// noResultOnError returns v, or v's zero value if err is not nil: a call
// whose read or commit ended in an error (its deadline passed as it
// finished, a commit refused after the function that computed v returned)
// returns nothing of what it computed beside the error.
func noResultOnError[T any](v T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Path returns the database directory ("" for an ephemeral database).
func (db *Database) Path() string {
	if db.persist == PersistenceEphemeral {
		return ""
	}
	return db.opts.Path
}

// IsEphemeral reports whether the database lives in memory only.
func (db *Database) IsEphemeral() bool { return db.persist == PersistenceEphemeral }

// PersistenceMode reports whether the database has files.
func (db *Database) PersistenceMode() PersistenceMode { return db.persist }

// DurabilityMode returns the database's durability mode (None for an
// ephemeral database).
func (db *Database) DurabilityMode() DurabilityMode { return db.dur.Mode() }

// Options returns the options in force, defaults filled in.
func (db *Database) Options() Options { return db.opts }

// IsOpen reports whether the database accepts new operations: false after
// Shutdown, Close or a storage failure.
func (db *Database) IsOpen() bool { return db.adb.Accepting() }

// Err returns nil while the database is open, ErrClosed after Shutdown or
// Close, or the failure (matching ErrFailed) after a storage failure.
func (db *Database) Err() error { return db.adb.Err() }

// CurrentVersion returns the visible version: the highest V such that every
// commit at or below V is applied and visible to new reads.
func (db *Database) CurrentVersion() uint64 { return db.store.Visible() }

// DurableVersion returns the highest version known to survive a crash. In
// Batched mode it trails CurrentVersion by at most one sync interval plus
// the sync's latency; in Strict mode it covers every acknowledged commit
// made in Strict (one that overrode it with WithDurability is made durable
// by the next background barrier, within about SyncInterval). It never
// exceeds CurrentVersion: a commit's fsync can finish before the commit is
// visible, and a version above the visible one would be refused by GetAt.
func (db *Database) DurableVersion() uint64 { return db.durable(db.dur.Durable()) }

// durable caps a durable version d at the visible version, read after d:
// every version at or below the cap is durable and readable. Both grow, so
// the cap does.
func (db *Database) durable(d uint64) uint64 { return min(d, db.store.Visible()) }

// Flush makes every acknowledged commit durable (one WAL fsync) and returns
// the durable version. It issues a sync barrier whenever anything was
// committed since the last one, also in Strict mode, where the commits are
// durable already: the barrier's sync mark is what lets Open detect synced
// commits lost to damage (docs/durability.md, "Sync marks"). On an
// ephemeral database nothing is ever durable: it returns 0, as
// DurableVersion does. With an error (the database closed or failed, ctx
// ended, the sync failed) it returns what DurableVersion returns: the
// version up to which commits were durable before.
func (db *Database) Flush(ctx context.Context) (uint64, error) {
	if err := db.enter(ctx); err != nil {
		return db.DurableVersion(), err
	}
	defer db.leave()
	if db.persist == PersistenceEphemeral {
		return db.dur.Durable(), nil // nothing is durable: 0
	}
	d, err := db.dur.Sync()
	return db.durable(d), err
}

// Shutdown stops accepting new operations, waits for those in flight until
// ctx ends, and syncs everything acknowledged. The database stays allocated
// until Close. If ctx ends first (or its deadline passes, by the clock),
// Shutdown returns its error; operations still in flight finish normally
// and Close waits for them. With nothing in flight there is nothing to
// wait for: Shutdown stops and syncs whatever ctx. Once Close has
// begun, Shutdown waits for it to finish (bounded by ctx), then returns nil,
// or ErrFailed for a failed database.
func (db *Database) Shutdown(ctx context.Context) error {
	ctx, cancel := clockBound(ctx)
	defer cancel()
	if db.closed.Load() {
		// Close syncs everything and releases the files: wait for it
		// (bounded by ctx). A failed database stays failed. A Close that
		// has finished needs no wait, so ctx does not matter then (a
		// select with both ready would pick either).
		select {
		case <-db.closeDone:
			return db.adb.Failed()
		default:
		}
		select {
		case <-db.closeDone:
			return db.adb.Failed()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	db.adb.StopAccepting()
	if err := db.adb.WaitIdle(ctx); err != nil {
		return err
	}
	if err := db.adb.Failed(); err != nil {
		return err
	}
	if db.persist == PersistenceEphemeral {
		return nil
	}
	_, err := db.dur.Sync()
	return err
}

// Close shuts the database down (waiting for operations in flight), syncs
// everything acknowledged and releases its files. It is idempotent: later
// calls return the first call's result. A database opened with
// Builder.OpenTemp also removes its directory.
func (db *Database) Close() error {
	db.closeOnce.Do(func() {
		db.closed.Store(true)
		db.adb.StopAccepting()
		_ = db.adb.WaitIdle(context.Background())
		db.txns.close()
		// No commit can start now: record the exact last version, so that
		// the next Open continues at the next one.
		errs := []error{db.store.Close()}
		if db.adb.Failed() == nil && db.persist == PersistenceDisk {
			errs = append(errs, db.dur.Close())
		} else {
			db.dur.Stop()
		}
		errs = append(errs, db.adb.Close())
		if db.tempDir != "" {
			errs = append(errs, os.RemoveAll(db.tempDir))
		}
		if f := db.adb.Failed(); f != nil {
			errs = []error{f}
		}
		db.closeErr = errors.Join(errs...)
		close(db.closeDone)
	})
	return db.closeErr
}

// commitResult is what a successful commit reports.
type commitResult struct {
	version   uint64
	timestamp int64
}

// commitReq is one commit of a run waiting to be validated and applied
// under the run's lock.
//
// Commits of a run are combined: a committer that finds the run's lock free
// takes it, applies its own request, then every request queued meanwhile,
// in order; a committer that finds the lock taken queues its request, looks
// at the lock once more (it may have come free), and otherwise waits for
// its request to be done by the holder. Under contention the lock then
// changes hands once per group rather than once per commit, and the waiting
// committers need not be scheduled one after the other to get through it:
// that handoff latency, not the work, is what bounds a run's commit rate
// when many goroutines commit with an fsync each.
type commitReq struct {
	// build returns the writes, given the version of the run's latest
	// commit, or an error that refuses the commit.
	build func(lastInRun uint64) ([]mvcc.Write, error)
	ws    []mvcc.Write // used when build is nil
	check func(lastInRun uint64) error
	txn   *Txn // validates like check (a method value would be an allocation)
	// ctx refuses the commit if it has ended when the commit is sequenced
	// (a transaction's is its txn's).
	ctx  context.Context
	sync bool

	c      *mvcc.Commit // &commit once applied
	commit mvcc.Commit
	err    error
	seen   uint64        // the run's latest version when a conflict or an absent key refused the request
	done   chan struct{} // signalled when another committer applied it; buffered 1
}

var commitReqPool = sync.Pool{New: func() any { return &commitReq{done: make(chan struct{}, 1)} }}

// commit applies ws to run at a new version. check, if not nil, runs under
// the run's commit lock before the version is allocated, with the version of
// the run's latest commit, and may refuse the commit (a conflict); so does
// ctx, if it has ended by the time the commit is sequenced (its deadline
// passed while it waited for the run's lock, say). The fsync wait, in
// Strict mode, happens after the lock is released so concurrent commits
// share fsyncs. commit returns once the new version is visible.
func (db *Database) commit(ctx context.Context, run RunID, ws []mvcc.Write, check func(lastInRun uint64) error, mode DurabilityMode) (commitResult, error) {
	r := commitReqPool.Get().(*commitReq)
	r.ws, r.check, r.ctx = ws, check, ctx
	defer commitReqPool.Put(r)
	rs := db.runs.acquire(run)
	defer rs.release()
	return db.submit(rs, r, mode)
}

// commitTxn is commit for a transaction's write set, validated by t.
func (db *Database) commitTxn(t *Txn, ws []mvcc.Write) (commitResult, error) {
	r := &t.req // the context's own request: no trip through commitReqPool
	r.ws, r.txn, r.ctx = ws, t, t.ctx
	return db.submit(t.rs, r, t.mode) // the run's state the transaction looked up
}

// commitBuilt is commit for a write set that can only be built under the
// run's commit lock (an event append needs the run's current log head):
// build gets the version of the run's latest commit and returns the writes,
// or an error that refuses the commit.
func (db *Database) commitBuilt(ctx context.Context, run RunID, build func(lastInRun uint64) ([]mvcc.Write, error), mode DurabilityMode) (commitResult, error) {
	rs := db.runs.acquire(run)
	defer rs.release()
	return db.commitBuiltIn(ctx, rs, build, mode)
}

// commitBuiltIn is commitBuilt for a caller that holds the run's state.
func (db *Database) commitBuiltIn(ctx context.Context, rs *runState, build func(lastInRun uint64) ([]mvcc.Write, error), mode DurabilityMode) (commitResult, error) {
	r := commitReqPool.Get().(*commitReq)
	r.build, r.ctx = build, ctx
	defer commitReqPool.Put(r)
	return db.submit(rs, r, mode)
}

// submit runs a commit request through the run's lock (see commitReq), then
// waits for the fsync (if mode asks for one) and for the commit to become
// visible. It leaves r reset, ready for reuse.
func (db *Database) submit(rs *runState, r *commitReq, mode DurabilityMode) (commitResult, error) {
	r.sync = mode.SyncsEachCommit() && db.persist == PersistenceDisk
	if rs.mu.TryLock() {
		// The lock is free: apply r at once, without queueing it, then
		// apply what others queued meanwhile.
		db.applyReq(rs, r)
		db.combine(rs, r, true)
	} else {
		enqueue(rs, r)
		db.await(rs, r)
	}
	applied, err, seen := r.c != nil, r.err, r.seen
	c := r.commit // r is reused once submit returns
	*r = commitReq{done: r.done}
	if err != nil {
		if seen > 0 {
			// The check that refused the request (a conflict, a Delete
			// that found the key absent) looked at every commit of the run
			// applied so far, and the latest may wait for its fsync before
			// it is visible: wait for it, so that a read after the refusal
			// sees what it was refused for (and a retry does not conflict
			// with it again). If that fsync fails, the refusal may rest on
			// a commit that did not happen: the failure is returned instead.
			if werr := db.store.WaitVisible(seen); werr != nil {
				return commitResult{}, fmt.Errorf("strata: commit: %w", werr)
			}
		}
		return commitResult{}, err
	}
	if !applied {
		return commitResult{}, nil // nothing to write
	}
	if c.Synced() { // asked for, or a new version reservation (see mvcc.Store.Apply)
		if err := c.SyncWait(); err != nil {
			return commitResult{}, fmt.Errorf("strata: commit: %w", err)
		}
		if db.persist == PersistenceDisk { // nothing in memory is durable
			db.dur.Synced(c.Version)
		}
	} else if db.persist == PersistenceDisk {
		db.dur.Committed(mode)
	}
	if err := c.Publish(); err != nil {
		return commitResult{}, fmt.Errorf("strata: commit: %w", err)
	}
	return commitResult{version: c.Version, timestamp: c.Timestamp}, nil
}

// enqueue queues r on its run.
func enqueue(rs *runState, r *commitReq) {
	rs.qmu.Lock()
	rs.queue = append(rs.queue, r)
	rs.qmu.Unlock()
}

// await returns once the queued request r has been applied (or refused),
// by this goroutine if the run's lock is free, or else by its holder.
func (db *Database) await(rs *runState, r *commitReq) {
	if !rs.mu.TryLock() {
		<-r.done
		return
	}
	if !db.combine(rs, r, false) {
		// The lock came free after the previous holder had already taken r
		// from the queue: it signals r once r is done (for a synced commit,
		// once the fsync is confirmed). Wait for that signal, or it would
		// wake the next user of r too early.
		<-r.done
	}
}

// combine runs with rs.mu held: it applies the queued requests in order
// until the queue is empty, then releases the lock. A request queued after
// the last look finds the lock free, or is picked up by the loop's look
// after the release.
//
// A request that was refused, or applied without asking for sync, is
// signalled at once (if its commit was synced anyway, because it started a
// new version reservation, its committer waits for that fsync itself). The
// requests that asked for sync are signalled after the lock is released;
// if own was applied with sync too, only once the fsync of the last of them
// is confirmed (it confirms every earlier one: Pebble syncs its WAL in
// order), so that each waiting committer is woken once, with its commit
// durable, instead of once to learn that it was applied and again by its
// own fsync wait. own is never signalled: its committer is the caller,
// who may have applied it already (ownApplied). combine reports whether own
// was applied by the caller or by combine (rather than by an earlier holder).
func (db *Database) combine(rs *runState, own *commitReq, ownApplied bool) (appliedOwn bool) {
	var synced []*commitReq
	var lastSync *mvcc.Commit
	appliedOwn = ownApplied
	if ownApplied && own.c != nil && own.sync {
		lastSync = own.c
	}
	batch := rs.spare // swapped with the queue, so that neither is reallocated
	for {
		rs.qmu.Lock()
		batch, rs.queue = rs.queue, batch[:0]
		rs.qmu.Unlock()
		for _, r := range batch {
			db.applyReq(rs, r)
			appliedOwn = appliedOwn || r == own
			switch {
			case r.c != nil && r.sync:
				lastSync = r.c
				if r != own {
					synced = append(synced, r)
				}
			case r != own:
				r.done <- struct{}{}
			}
		}
		clear(batch)
		rs.qmu.Lock()
		more := len(rs.queue) > 0
		rs.qmu.Unlock()
		if more {
			continue
		}
		rs.spare = batch[:0]
		rs.mu.Unlock()
		rs.qmu.Lock()
		more = len(rs.queue) > 0
		rs.qmu.Unlock()
		if !more || !rs.mu.TryLock() {
			break // whoever holds the lock now drains the queue
		}
		batch = rs.spare
	}
	if len(synced) > 0 {
		// If this committer's own commit waits for an fsync anyway, it
		// waits for all of them (a failed fsync fails the store, and each
		// committer's own wait reports it); otherwise each committer waits
		// for its own.
		if appliedOwn && own.c != nil && own.sync {
			_ = lastSync.SyncWait()
		}
		for _, r := range synced {
			r.done <- struct{}{}
		}
	}
	return appliedOwn
}

// applyReq validates and applies one request, with rs.mu held.
func (db *Database) applyReq(rs *runState, r *commitReq) {
	if !rs.lastSet {
		rs.last, rs.lastSet = db.store.Applied(), true // see runState.last
	}
	ws := r.ws
	if r.check != nil || r.build != nil {
		// A direct operation's context ended while it waited for the
		// run's lock: refuse it before its check (a transaction's
		// validation looks at its own context first).
		if r.err = ctxErr(r.ctx); r.err != nil {
			return
		}
	}
	switch {
	case r.check != nil:
		r.err = r.check(rs.last)
	case r.txn != nil:
		r.err = r.txn.validate(rs.last)
	}
	if r.err != nil {
		if r.err == errKeyAbsent || errors.Is(r.err, ErrConflict) {
			// Refused for what the run's commits hold: see submit.
			r.seen = rs.last
		}
		return
	}
	if r.build != nil {
		if ws, r.err = r.build(rs.last); r.err != nil || len(ws) == 0 {
			return
		}
	}
	if err := db.store.ApplyTo(r.ctx, &r.commit, ws, r.sync); err != nil { // a deadline holds until the commit gets a version
		if mvcc.IsRefused(err) {
			// The deadline passed while the commit waited to be sequenced:
			// the context's error, as a refusal under the run's lock gives.
			r.err = errors.Unwrap(err)
			return
		}
		r.err = fmt.Errorf("strata: commit: %w", err)
		return
	}
	rs.last = r.commit.Version
	r.c = &r.commit
}
