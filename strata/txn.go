package strata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unsafe"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
)

// MaxTxnSize is the largest write set a transaction may commit: the sum of
// its keys' and values' sizes, in bytes.
const MaxTxnSize = 64 << 20

var (
	// ErrTxnTooLarge: a transaction's writes exceed MaxTxnSize. Nothing is
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
// A transaction that wrote nothing commits without a version, a WAL record
// or an fsync, and never conflicts.
//
// # Lifetime
//
// A Txn is not safe for concurrent use. From Begin until Commit or End it
// counts as an operation in flight: Shutdown and Close wait for it. Always
// End a transaction from Begin (End after Commit is a no-op); the closure
// API does it for you.
type Txn struct {
	db   *Database
	ctx  context.Context
	run  RunID
	snap uint64
	mode DurabilityMode

	*txnBuffers // nil once the transaction ended
	size        int
	done        bool
}

type txnWrite struct {
	kind    keyenc.Kind
	payload []byte
}

// scanRead is a prefix the transaction listed and what it saw there.
type scanRead struct {
	prefix []byte
	seen   map[string]uint64
}

// TxnOption tunes one transaction.
type TxnOption func(*txnConfig)

type txnConfig struct {
	mode    DurabilityMode
	modeSet bool
	retry   *RetryConfig
	timeout time.Duration // 0 for none
}

// WithDurability commits the transaction with mode instead of the
// database's. A stronger mode makes this commit wait for its fsync; a weaker
// one skips the wait. Commits stay in version order in the WAL either way,
// so no override can leave a hole after a crash.
func WithDurability(mode DurabilityMode) TxnOption {
	return func(c *txnConfig) { c.mode, c.modeSet = mode, true }
}

// Begin starts a transaction in run at the current visible version. ctx
// bounds the whole transaction: once it is done, every operation and the
// commit fail with its error. End the transaction when done with it.
func (db *Database) Begin(ctx context.Context, run RunID, opts ...TxnOption) (*Txn, error) {
	var cfg txnConfig
	for _, o := range opts {
		o(&cfg)
	}
	return db.begin(ctx, run, cfg)
}

func (db *Database) begin(ctx context.Context, run RunID, cfg txnConfig) (*Txn, error) {
	if err := run.Validate(); err != nil {
		return nil, err
	}
	if cfg.modeSet && !cfg.mode.Valid() {
		return nil, fmt.Errorf("%w: unknown durability mode %d", ErrInvalidOptions, cfg.mode)
	}
	if err := db.enter(ctx); err != nil {
		return nil, err
	}
	mode := db.dur.Mode()
	if cfg.modeSet {
		mode = cfg.mode
	}
	db.txnStarted.Add(1)
	db.txnActive.Add(1)
	return &Txn{db: db, ctx: ctx, run: run, snap: db.store.Visible(), mode: mode, txnBuffers: db.txns.get()}, nil
}

// Snapshot returns the version the transaction reads at.
func (t *Txn) Snapshot() uint64 { return t.snap }

// Run returns the transaction's run.
func (t *Txn) Run() RunID { return t.run }

func (t *Txn) check() error {
	if t.done {
		return ErrTxnDone
	}
	return t.ctx.Err()
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
	if w, ok := t.writes[string(key)]; ok {
		if w.kind == keyenc.KindTombstone {
			return Versioned{}, ErrNotFound
		}
		return decodeRecord(mvcc.Record{Kind: w.kind, Payload: w.payload})
	}
	rec, found, err := t.db.store.Get(keyenc.RunID(t.run), keyenc.TagKV, key, t.snap)
	if err != nil {
		return Versioned{}, err
	}
	if !found || rec.Deleted() {
		t.reads[string(key)] = 0
		return Versioned{}, ErrNotFound
	}
	t.reads[string(key)] = rec.Version
	return decodeRecord(rec)
}

// Exists reports whether key has a value at the snapshot (or was written by
// the transaction). The read is validated at commit.
func (t *Txn) Exists(key []byte) (bool, error) {
	_, err := t.Get(key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// Put writes v under key when the transaction commits.
func (t *Txn) Put(key []byte, v Value) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkKey(t.run, key); err != nil {
		return err
	}
	kind, payload, err := encodeValue(v)
	if err != nil {
		return err
	}
	return t.write(key, txnWrite{kind: kind, payload: bytes.Clone(payload)})
}

// Delete deletes key when the transaction commits and reports whether it
// existed (at the snapshot, or through the transaction's own writes). It
// reads the key, so a concurrent change of it makes the commit conflict.
func (t *Txn) Delete(key []byte) (bool, error) {
	existed, err := t.Exists(key)
	if err != nil {
		return false, err
	}
	if !existed {
		// Still a write: the key may have been created since the snapshot,
		// which the recorded read catches at commit.
		if _, own := t.writes[string(key)]; !own {
			return false, nil
		}
	}
	return existed, t.write(key, txnWrite{kind: keyenc.KindTombstone})
}

// CAS writes v under key when the transaction commits, provided the key's
// committed version then equals expected (0: absent or deleted). The check
// happens at commit, apart from the read set; a mismatch fails the commit
// with a *ConflictError.
func (t *Txn) CAS(key []byte, expected uint64, v Value) error {
	if err := t.Put(key, v); err != nil {
		return err
	}
	t.cas[string(key)] = expected
	return nil
}

func (t *Txn) write(key []byte, w txnWrite) error {
	old, had := t.writes[string(key)]
	size := t.size + len(key) + len(w.payload)
	if had {
		size -= len(key) + len(old.payload)
	}
	if size > MaxTxnSize {
		return fmt.Errorf("%w: %d bytes of writes exceed %d", ErrTxnTooLarge, size, MaxTxnSize)
	}
	t.writes[string(key)] = w
	t.size = size
	return nil
}

// List returns, in order, the keys that start with prefix at the snapshot,
// overlaid with the transaction's own writes. The whole prefix range is
// recorded: a key added to, removed from or changed in it by a concurrent
// commit makes this transaction's commit conflict.
func (t *Txn) List(prefix []byte) ([][]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := t.run.Validate(); err != nil {
		return nil, err
	}
	seen, err := t.db.scanVersions(t.run, prefix, t.snap)
	if err != nil {
		return nil, err
	}
	t.scans = append(t.scans, scanRead{prefix: bytes.Clone(prefix), seen: seen})
	keys := map[string]bool{}
	for k := range seen {
		keys[k] = true
	}
	for k, w := range t.writes {
		if bytes.HasPrefix([]byte(k), prefix) {
			keys[k] = w.kind != keyenc.KindTombstone
		}
	}
	var out [][]byte
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if keys[k] {
			out = append(out, []byte(k))
		}
	}
	return out, nil
}

// scanVersions returns key -> version of every live KV key of run under
// prefix at version at.
func (db *Database) scanVersions(run RunID, prefix []byte, at uint64) (map[string]uint64, error) {
	seen := map[string]uint64{}
	for e, err := range db.store.Scan(keyenc.RunID(run), keyenc.TagKV, prefix, nil, at) {
		if err != nil {
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
	defer t.end()
	if err := t.ctx.Err(); err != nil {
		t.db.txnAborted.Add(1)
		return 0, err
	}
	if len(t.writes) == 0 {
		t.db.txnCommitted.Add(1)
		return 0, nil // read-only: no version, no WAL record, no conflict
	}
	ws := t.ws[:0]
	for k, w := range t.writes {
		// The batch copies the key; a read-only view of the map key's bytes
		// saves a copy per write.
		key := unsafe.Slice(unsafe.StringData(k), len(k))
		ws = append(ws, mvcc.Write{Run: t.run, Tag: keyenc.TagKV, Key: key, Kind: w.kind, Payload: w.payload})
	}
	t.ws = ws
	res, err := t.db.commit(t.run, ws, t.validate, t.mode)
	if err != nil {
		t.db.txnAborted.Add(1)
		return 0, err
	}
	t.db.txnCommitted.Add(1)
	return res.version, nil
}

// validate runs under the run's commit lock and sees every commit of the
// run applied so far; lastInRun is the version of the latest of them.
func (t *Txn) validate(lastInRun uint64) error {
	if err := t.ctx.Err(); err != nil {
		return err // the deadline passed while waiting: refuse the commit
	}
	// No commit of the run since the snapshot: nothing read or listed can
	// have changed, so only CAS expectations need a look.
	unchanged := lastInRun <= t.snap
	var keys [][]byte
	var reasons []string
	for k, seen := range t.reads {
		if unchanged {
			break
		}
		cur, err := t.db.latestVersion(t.run, []byte(k))
		if err != nil {
			return err
		}
		if cur != seen {
			keys = append(keys, []byte(k))
			reasons = append(reasons, fmt.Sprintf("%q read at version %d, now %d", k, seen, cur))
		}
	}
	for k, expected := range t.cas {
		cur, err := t.db.latestVersion(t.run, []byte(k))
		if err != nil {
			return err
		}
		if cur != expected {
			keys = append(keys, []byte(k))
			reasons = append(reasons, fmt.Sprintf("compare-and-swap on %q expected version %d, found %d", k, expected, cur))
		}
	}
	for _, s := range t.scans {
		if unchanged {
			break
		}
		now, err := t.db.scanVersions(t.run, s.prefix, keyenc.MaxVersion)
		if err != nil {
			return err
		}
		changed := func(k string) {
			keys = append(keys, []byte(k))
			reasons = append(reasons, fmt.Sprintf("listed prefix %q changed at %q", s.prefix, k))
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
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, bytes.Compare)
	slices.Sort(reasons)
	return &ConflictError{Run: t.run, Keys: keys, Reason: reasons[0]}
}

// End ends the transaction, discarding its writes if it did not commit. It
// is idempotent and safe after Commit.
func (t *Txn) End() {
	if !t.done {
		t.db.txnAborted.Add(1)
		t.end()
	}
}

func (t *Txn) end() {
	if t.done {
		return
	}
	t.done = true
	t.db.txns.put(t.txnBuffers)
	t.txnBuffers = nil
	t.db.txnActive.Add(-1)
	t.db.leave()
}
