package strata

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/value"
)

// MaxTxnSize is the largest write set a transaction may commit: the sum of
// its keys' sizes and the sizes of the payloads its values are stored as
// (a top-level Bytes value in the KV at its raw length, any other Value in
// its canonical encoding, see format.md), in bytes; a key written twice
// counts once, with its last value.
const MaxTxnSize = 64 << 20

var (
	// ErrTxnTooLarge: a write would take a transaction's writes past
	// MaxTxnSize. The transaction can then no longer commit: its later
	// writes and its Commit fail with this error too, and nothing of it is
	// written.
	ErrTxnTooLarge = errors.New("strata: transaction too large")
	// ErrTxnDone: the transaction was already committed or ended.
	ErrTxnDone = errors.New("strata: transaction already committed or ended")
)

// Txn is an optimistic, serializable transaction in one run.
//
// # Reads
//
// Every read sees one snapshot: the database's visible version when the
// transaction began, overlaid with the transaction's own writes (puts,
// deletes and CAS writes). A value the transaction wrote itself reads with
// Version 0: it has no commit version yet.
//
// # Commit
//
// Commit validates, under the run's commit lock, that nothing the
// transaction read has changed since its snapshot: every key it read still
// has the version it saw (0 for absent), every prefix it listed still holds
// the same keys at the same versions (so phantoms abort), and every CAS
// expectation still holds. Otherwise it fails with a *ConflictError
// (errors.Is(err, ErrConflict)) naming the keys, and writes nothing.
// Writes of keys the transaction did not read (blind writes) never conflict.
// A deleted key reads as absent (version 0), so a key read as absent that
// other commits created and deleted again meanwhile does not conflict: what
// the transaction read still holds when it commits.
// A transaction that wrote nothing commits without a version, a WAL record
// or an fsync, and never conflicts.
//
// # Lifetime
//
// A Txn is not safe for concurrent use: that includes a goroutine still
// using it as it ends (End, Commit, or the return of Transaction's
// function), since its pooled buffers then pass to another transaction.
// From Begin until Commit or End it counts as an operation in flight:
// Shutdown and Close wait for it, so the goroutine that holds it must not
// call them. Always End a transaction from Begin (End after Commit is a
// no-op); the closure API does it for you, also when its function panics.
type Txn struct {
	db   *Database
	ctx  context.Context
	run  RunID
	snap uint64
	mode DurabilityMode
	rs   *runState // the run's state, acquired by begin and released by end

	onCommit func(version uint64, timestamp int64)
	cancel   context.CancelFunc // releases WithTimeout's context (Begin only)
	direct   bool               // not counted in TxnMetrics
	admitted bool               // runs inside a call that holds its admission (see admittedOp)
	// noOrphanEvents: checkNoOrphanEvents passed at snap (see eventHead);
	// the snapshot is fixed, so it need not run again.
	noOrphanEvents bool
	// eventsBase is the stored log head's length the transaction's appends
	// follow, and eventsEnd the log's length after them (0 if it appended
	// none): its commit checks the tail past eventsBase (checkEventTail).
	eventsBase, eventsEnd uint64

	*txnBuffers // nil once the transaction ended
	size        int
	tooLarge    error // set once a write was refused for size: the transaction cannot commit
	readErr     error // set once a read failed in the storage: the transaction cannot commit
	done        bool
	committed   bool   // Commit succeeded
	version     uint64 // and returned this version
	commitErr   error  // or failed with this error
}

type txnWrite struct {
	kind    keyenc.Kind
	payload []byte
}

// scanRead is a prefix the transaction listed and what it saw there.
type scanRead struct {
	tag    keyenc.Tag
	prefix []byte
	seen   map[string]uint64
}

// TxnOption tunes one transaction.
type TxnOption func(*txnConfig)

type txnConfig struct {
	mode       DurabilityMode
	modeSet    bool
	retry      *RetryConfig
	timeout    time.Duration // 0 for none
	timeoutSet bool
	nilOption  bool // a nil TxnOption was given
	// direct marks the transactions that direct operations (state calls,
	// event and state reads) run in: they are not counted in TxnMetrics.
	direct bool
	// admitted marks a transaction run by a call that was admitted itself
	// (db.enter) and stays admitted until it returns: the transaction
	// neither enters nor leaves, so that Shutdown cannot begin between it
	// and the call's other steps and refuse one of them.
	admitted bool
	// onCommit, if set, gets the commit version and timestamp of a
	// successful commit that wrote something (internal callers only).
	onCommit func(version uint64, timestamp int64)
}

// directOp sets txnConfig.direct.
func directOp(c *txnConfig) { c.direct = true }

// admittedOp sets txnConfig.admitted.
func admittedOp(c *txnConfig) { c.admitted = true }

// withCommitHook sets txnConfig.onCommit.
func withCommitHook(f func(version uint64, timestamp int64)) TxnOption {
	return func(c *txnConfig) { c.onCommit = f }
}

// WithDurability commits the transaction with mode instead of the
// database's. A stronger mode makes this commit wait for its fsync; a weaker
// one skips the wait. Commits stay in version order in the WAL either way,
// so no override can leave a hole after a crash.
func WithDurability(mode DurabilityMode) TxnOption {
	return func(c *txnConfig) { c.mode, c.modeSet = mode, true }
}

// Begin starts a transaction in run at the current visible version. ctx
// bounds the whole transaction: once it is done, every operation fails with
// its error, and so does the commit unless it was already applied (see
// WithTimeout). End the transaction when done with it.
func (db *Database) Begin(ctx context.Context, run RunID, opts ...TxnOption) (*Txn, error) {
	cfg := applyTxnOptions(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.retry != nil {
		return nil, fmt.Errorf("%w: WithRetry applies to Transaction, not to a transaction from Begin", ErrInvalidOptions)
	}
	var cancel context.CancelFunc
	if cfg.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
	}
	t, err := db.begin(ctx, run, cfg)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	t.cancel = cancel
	return t, nil
}

// begin starts a transaction; cfg was validated, and its retry and timeout
// are the caller's business.
func (db *Database) begin(ctx context.Context, run RunID, cfg txnConfig) (*Txn, error) {
	if err := run.Validate(); err != nil {
		return nil, err
	}
	if cfg.admitted {
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
	} else if err := db.enter(ctx); err != nil {
		return nil, err
	}
	mode := db.dur.Mode()
	if cfg.modeSet {
		mode = cfg.mode
	}
	if !cfg.direct {
		db.txnStarted.Add(1)
		db.txnActive.Add(1)
	}
	b := db.txns.get() // pinned at 0 until the snapshot is known
	snap := db.store.Visible()
	b.pin.Store(snap + 1)
	return &Txn{db: db, ctx: ctx, run: run, snap: snap, mode: mode, rs: db.runs.acquire(run), onCommit: cfg.onCommit, direct: cfg.direct, admitted: cfg.admitted, txnBuffers: b}, nil
}

// Snapshot returns the version the transaction reads at.
func (t *Txn) Snapshot() uint64 { return t.snap }

// Run returns the transaction's run.
func (t *Txn) Run() RunID { return t.run }

// check reports why the transaction cannot go on: it ended, the database
// failed (a transaction begun before a storage failure fails with it, as
// every later call does), or its context ended.
func (t *Txn) check() error {
	if t.done {
		return ErrTxnDone
	}
	if err := t.db.adb.Failed(); err != nil {
		return err
	}
	return ctxErr(t.ctx)
}

// Get returns the value of key at the transaction's snapshot, or its own
// write. An absent or deleted key returns ErrNotFound; either way the read
// is recorded and validated at commit.
func (t *Txn) Get(key []byte) (Versioned, error) {
	if err := t.check(); err != nil {
		return Versioned{}, err
	}
	if err := checkKey(t.run, key); err != nil {
		return Versioned{}, err
	}
	rec, found, err := t.read(keyenc.TagKV, key, true)
	if err != nil {
		return Versioned{}, err
	}
	if !found {
		return Versioned{}, ErrNotFound
	}
	v, err := decodeRecord(rec)
	if err != nil {
		return Versioned{}, t.failRead(err)
	}
	return v, nil
}

// failRead records err, a read that failed in the storage (an I/O error, a
// checksum failure, a stored record that does not decode), and returns it.
// The transaction did not see what it asked for, and its read set may miss
// the read, so it can no longer commit: Commit returns the first such
// error, even if the function ignored it.
func (t *Txn) failRead(err error) error {
	if t.readErr == nil {
		t.readErr = fmt.Errorf("strata: the transaction cannot commit, a read failed: %w", err)
	}
	return err
}

// tkey returns the transaction-map key of (tag, key): the tag byte and the
// user key, in a scratch buffer valid until the next call.
func (t *Txn) tkey(tag keyenc.Tag, key []byte) []byte {
	t.kbuf = append(append(t.kbuf[:0], byte(tag)), key...)
	return t.kbuf
}

// read returns the record of (tag, key) that the transaction sees: its own
// write (Version 0), or the newest committed version at the snapshot, which
// is recorded in the read set (0 when absent). found is false for an absent
// or deleted key. Without payload, the record comes without its payload
// (no value is copied).
func (t *Txn) read(tag keyenc.Tag, key []byte, payload bool) (rec mvcc.Record, found bool, err error) {
	tk := t.tkey(tag, key)
	if w, ok := t.writes.get(tk); ok {
		rec = mvcc.Record{Kind: w.kind}
		if payload {
			// A copy: what the caller gets must not share the pending
			// write's bytes, which may live in the pooled context's arena.
			rec.Payload = bytes.Clone(w.payload)
		}
		return rec, w.kind != keyenc.KindTombstone, nil
	}
	get := t.db.store.Get
	if !payload {
		get = t.db.store.Stat
	}
	rec, found, err = get(keyenc.RunID(t.run), tag, key, t.snap)
	if err != nil {
		return mvcc.Record{}, false, t.failRead(err)
	}
	if !found || rec.Deleted() {
		t.reads[string(tk)] = 0
		return mvcc.Record{}, false, nil
	}
	t.reads[string(tk)] = rec.Version
	return rec, true, nil
}

// Exists reports whether key has a value at the snapshot (or was written by
// the transaction). The read is validated at commit.
func (t *Txn) Exists(key []byte) (bool, error) {
	if err := t.check(); err != nil {
		return false, err
	}
	if err := checkKey(t.run, key); err != nil {
		return false, err
	}
	_, found, err := t.read(keyenc.TagKV, key, false)
	return found, err
}

// Put writes v under key when the transaction commits.
func (t *Txn) Put(key []byte, v Value) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkKey(t.run, key); err != nil {
		return err
	}
	kind, payload, err := t.encodeValue(v)
	if err != nil {
		return err
	}
	borrowed := true // the caller's bytes, or the scratch buffer
	if kind == keyenc.KindValue && len(payload) > arenaMaxPiece {
		t.vbuf, borrowed = nil, false // too large to copy: keep the scratch buffer itself
	}
	return t.write(keyenc.TagKV, key, txnWrite{kind: kind, payload: payload}, borrowed)
}

// encodeValue is the package's encodeValue, encoding a structured value
// into the context's scratch buffer t.vbuf.
func (t *Txn) encodeValue(v Value) (keyenc.Kind, []byte, error) {
	if _, ok := v.AsBytes(); ok {
		return encodeValue(v)
	}
	enc, err := value.AppendLimit(t.vbuf[:0], v, MaxValueSize)
	if err != nil {
		return 0, nil, err
	}
	t.vbuf = enc
	return keyenc.KindValue, enc, nil
}

// Delete deletes key when the transaction commits and reports whether it
// existed (at the snapshot, or through the transaction's own writes). It
// reads the key, so a concurrent change of it makes the commit conflict.
func (t *Txn) Delete(key []byte) (bool, error) {
	existed, err := t.Exists(key)
	if err != nil {
		return false, err
	}
	if !existed && !t.writes.has(t.tkey(keyenc.TagKV, key)) {
		// Absent at the snapshot and not written here: there is nothing to
		// delete. The recorded read still makes the commit conflict if a
		// concurrent commit creates the key. (An absent key that has a
		// write here was deleted here: the tombstone is rewritten.)
		return false, nil
	}
	return existed, t.write(keyenc.TagKV, key, txnWrite{kind: keyenc.KindTombstone}, false)
}

// CAS writes v under key when the transaction commits, provided the key's
// committed version then equals expected (0: absent or deleted). The check
// happens at commit, apart from the read set; a mismatch fails the commit
// with a *ConflictError. Each CAS call on a key adds its expectation, and
// the commit needs every one of them to hold (two different expectations
// make it fail).
func (t *Txn) CAS(key []byte, expected uint64, v Value) error {
	if err := t.Put(key, v); err != nil {
		return err
	}
	tk := t.tkey(keyenc.TagKV, key)
	if first, ok := t.cas[string(tk)]; ok {
		if first != expected {
			// Every expectation must hold, and no version equals both:
			// keep this one too, so that the commit fails on it.
			t.casMore = append(t.casMore, casExpectation{key: string(tk), expected: expected})
		}
		return nil
	}
	t.cas[string(tk)] = expected
	return nil
}

// write buffers w for (tag, key), within the transaction size limit. If
// borrowed, w's payload is not the transaction's own and is copied once
// the write is accepted.
func (t *Txn) write(tag keyenc.Tag, key []byte, w txnWrite, borrowed bool) error {
	if t.tooLarge != nil {
		return t.tooLarge
	}
	tk := t.tkey(tag, key)
	i := t.writes.find(tk)
	size := t.size + len(key) + len(w.payload)
	if i >= 0 {
		size -= len(key) + len(t.writes.list[i].w.payload)
	}
	if size > MaxTxnSize {
		return t.refuseSize(size)
	}
	if borrowed {
		w.payload = t.hold(w.payload)
	}
	if i >= 0 {
		t.writes.replace(i, w) // a rewrite does not spend arena space on the key again
	} else {
		t.writes.add(t.holdString(tk), w)
	}
	t.size = size
	return nil
}

// refuseSize records that a write would have taken the transaction's
// writes to size bytes, past MaxTxnSize: the transaction can no longer
// commit. It returns the error.
func (t *Txn) refuseSize(size int) error {
	t.tooLarge = fmt.Errorf("%w: %d bytes of writes would exceed %d; the transaction cannot commit", ErrTxnTooLarge, size, MaxTxnSize)
	return t.tooLarge
}

// List returns, in order, the keys that start with prefix at the snapshot,
// overlaid with the transaction's own writes. The whole prefix range is
// recorded: the commit conflicts unless the range holds, just before it,
// the same keys at the same versions as the listing saw (a key that a
// concurrent commit added, removed or rewrote; not one added and removed
// again in between). A range listed over the transaction's own blind write
// covers that key too: a concurrent write to it conflicts.
func (t *Txn) List(prefix []byte) ([][]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := t.run.Validate(); err != nil {
		return nil, err
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	return t.list(keyenc.TagKV, prefix, nil)
}

// list lists the live keys of tag under prefix as List does, recording the
// range. keep, if not nil, filters what is returned (not what is recorded):
// it gets each key and the record the transaction sees.
func (t *Txn) list(tag keyenc.Tag, prefix []byte, keep func(key []byte, rec mvcc.Record) bool) ([][]byte, error) {
	seen := map[string]uint64{}
	keys := map[string]bool{} // key -> listed
	for e, err := range t.db.store.Scan(keyenc.RunID(t.run), tag, prefix, nil, t.snap) {
		if err != nil {
			return nil, t.failRead(err)
		}
		if err := ctxErr(t.ctx); err != nil {
			return nil, err // a long scan ends at the deadline too
		}
		seen[string(e.Key)] = e.Version
		// keep looks at the record now: its payload is the scan's, valid
		// only in this step.
		keys[string(e.Key)] = keep == nil || keep(e.Key, e.Record)
	}
	if !t.listed(tag, prefix) {
		t.recordScan(scanRead{tag: tag, prefix: bytes.Clone(prefix), seen: seen})
	}
	for i, e := range t.writes.list {
		if i%1024 == 1023 {
			if err := ctxErr(t.ctx); err != nil {
				return nil, err // a large write set is merged within the deadline too
			}
		}
		tk, w := e.key, e.w
		if tk[0] == byte(tag) && strings.HasPrefix(tk[1:], string(prefix)) {
			keys[tk[1:]] = w.kind != keyenc.KindTombstone &&
				(keep == nil || keep([]byte(tk[1:]), mvcc.Record{Kind: w.kind, Payload: w.payload}))
		}
	}
	var out [][]byte
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if keys[k] {
			out = append(out, []byte(k))
		}
	}
	// Merging and sorting can take long too: nothing succeeds after the
	// deadline.
	if err := ctxErr(t.ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// listed reports whether the transaction recorded a list of tag under a
// prefix of prefix (prefix itself included): the commit's check of that
// range covers prefix's too, since the snapshot is the same, so a list
// repeated in one transaction is checked once.
func (t *Txn) listed(tag keyenc.Tag, prefix []byte) bool {
	if t.scanIdx == nil {
		for _, s := range t.scans {
			if s.tag == tag && bytes.HasPrefix(prefix, s.prefix) {
				return true
			}
		}
		return false
	}
	// Past scanIndexFrom recorded ranges, look up each of prefix's own
	// prefixes that has the length of a recorded one, so that many lists
	// in one transaction do not cost a quadratic time.
	tk := t.tkey(tag, prefix)
	for _, n := range t.scanLens {
		if n > len(prefix) {
			break
		}
		if _, ok := t.scanIdx[string(tk[:1+n])]; ok {
			return true
		}
	}
	return false
}

// scanIndexFrom is the number of recorded ranges from which listed looks
// them up in an index instead of going through them all.
const scanIndexFrom = 32

// recordScan records a listed range, indexing it once the transaction has
// recorded scanIndexFrom of them.
func (t *Txn) recordScan(s scanRead) {
	t.scans = append(t.scans, s)
	switch {
	case len(t.scans) == scanIndexFrom:
		t.scanIdx = make(map[string]struct{}, 2*scanIndexFrom)
		for _, s := range t.scans {
			t.indexScan(s)
		}
	case len(t.scans) > scanIndexFrom:
		t.indexScan(s)
	}
}

// indexScan adds s to the index of recorded ranges: its tagged prefix, and
// its length to the sorted set of lengths.
func (t *Txn) indexScan(s scanRead) {
	t.scanIdx[string(t.tkey(s.tag, s.prefix))] = struct{}{}
	if i, found := slices.BinarySearch(t.scanLens, len(s.prefix)); !found {
		t.scanLens = slices.Insert(t.scanLens, i, len(s.prefix))
	}
}

// scanVersions returns key -> version of every live key of (run, tag) under
// prefix at version at. It ends with ctx's error once ctx is done.
func (db *Database) scanVersions(ctx context.Context, run RunID, tag keyenc.Tag, prefix []byte, at uint64) (map[string]uint64, error) {
	seen := map[string]uint64{}
	for e, err := range db.store.Scan(keyenc.RunID(run), tag, prefix, nil, at) {
		if err != nil {
			return nil, err
		}
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		seen[string(e.Key)] = e.Version
	}
	return seen, nil
}

// Commit validates and applies the transaction and returns its commit
// version (0 if it wrote nothing). It ends the transaction whatever the
// outcome.
func (t *Txn) Commit() (uint64, error) {
	if t.done {
		return 0, ErrTxnDone
	}
	outcome := &t.db.txnAborted
	defer func() { t.end(outcome) }()
	if err := cmp.Or(t.check(), t.tooLarge, t.readErr); err != nil {
		t.commitErr = err
		return 0, err
	}
	if t.writes.len() == 0 {
		outcome, t.committed = &t.db.txnCommitted, true
		return 0, nil // read-only: no version, no WAL record, no conflict
	}
	ws := t.ws[:0]
	for _, e := range t.writes.list {
		tk, w := e.key, e.w
		// The batch copies the key; a read-only view of the map key's bytes
		// saves a copy per write.
		key := unsafe.Slice(unsafe.StringData(tk[1:]), len(tk)-1)
		ws = append(ws, mvcc.Write{Run: t.run, Tag: keyenc.Tag(tk[0]), Key: key, Kind: w.kind, Payload: w.payload})
	}
	t.ws = ws
	res, err := t.db.commitTxn(t, ws)
	if err != nil {
		t.commitErr = err
		return 0, err
	}
	outcome, t.committed, t.version = &t.db.txnCommitted, true, res.version
	if t.onCommit != nil {
		t.onCommit(res.version, res.timestamp)
	}
	return res.version, nil
}

// validate runs under the run's commit lock and sees every commit of the
// run applied so far; lastInRun is the version of the latest of them. Once
// it passes, the commit is refused only if its context ends before it is
// sequenced (mvcc.Store.ApplyTo looks at it last); a commit applied cannot
// be refused.
func (t *Txn) validate(lastInRun uint64) error {
	if err := ctxErr(t.ctx); err != nil {
		return err // the deadline passed while waiting: refuse the commit
	}
	// No commit of the run since the snapshot: nothing read or listed can
	// have changed, so only CAS expectations need a look.
	unchanged := lastInRun <= t.snap
	var c conflicts
	for tk, seen := range t.reads {
		if unchanged {
			break
		}
		cur, err := t.db.latestVersion(t.run, keyenc.Tag(tk[0]), []byte(tk[1:]))
		if err != nil {
			return err
		}
		if cur != seen {
			c.add(keyenc.Tag(tk[0]), tk[1:], fmt.Sprintf("%s read at version %d, now %d", describe(keyenc.Tag(tk[0]), tk[1:]), seen, cur))
		}
	}
	checkCAS := func(tk string, expected uint64) error {
		cur, err := t.db.latestVersion(t.run, keyenc.Tag(tk[0]), []byte(tk[1:]))
		if err != nil {
			return err
		}
		if cur != expected {
			c.add(keyenc.Tag(tk[0]), tk[1:], fmt.Sprintf("compare-and-swap on %s expected version %d, found %d", describe(keyenc.Tag(tk[0]), tk[1:]), expected, cur))
		}
		return nil
	}
	for tk, expected := range t.cas {
		if err := checkCAS(tk, expected); err != nil {
			return err
		}
	}
	for _, e := range t.casMore {
		if err := checkCAS(e.key, e.expected); err != nil {
			return err
		}
	}
	for _, s := range t.scans {
		if unchanged {
			break
		}
		now, err := t.db.scanVersions(t.ctx, t.run, s.tag, s.prefix, keyenc.MaxVersion)
		if err != nil {
			return err
		}
		changed := func(k string) {
			c.add(s.tag, k, fmt.Sprintf("listed prefix %q of %s changed at %q", s.prefix, primitiveOf(s.tag), k))
		}
		for k, v := range s.seen {
			if now[k] != v {
				changed(k) // modified or removed
			}
		}
		for k := range now {
			if _, ok := s.seen[k]; !ok {
				changed(k) // a phantom
			}
		}
	}
	if err := c.err(t.run); err != nil {
		return err
	}
	if t.eventsEnd > 0 {
		// The log head is unchanged since the snapshot (its read passed),
		// so the appends still follow the newest head: nothing may be
		// stored where they write.
		if err := t.db.checkEventTail(t.rs, t.run, t.eventsBase); err != nil {
			return err
		}
		appendedEventTail(t.rs, t.eventsEnd)
	}
	// The checks above read the store (the scans of listed prefixes can be
	// long): the deadline is looked at again as the commit is sequenced,
	// right after (mvcc.Store.ApplyTo).
	return nil
}

// End ends the transaction, discarding its writes if it did not commit. It
// is idempotent and safe after Commit.
func (t *Txn) End() { t.end(&t.db.txnAborted) }

// end ends the transaction, counting its outcome in outcome unless it is
// direct. Active drops before the outcome counts, so that Metrics, which
// reads the outcomes before Active and Started, never counts a transaction
// twice.
func (t *Txn) end(outcome *atomic.Int64) {
	if t.done {
		return
	}
	t.done = true
	t.db.txns.put(t.txnBuffers)
	t.txnBuffers = nil
	t.rs.release()
	if !t.direct {
		t.db.txnActive.Add(-1)
		outcome.Add(1)
	}
	if !t.admitted {
		t.db.leave()
	}
	if t.cancel != nil {
		t.cancel()
	}
}
