package mvcc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
)

// Write is one entry of a write set: a value (Kind KindBytes or KindValue)
// or a deletion (Kind KindTombstone, no payload) of (Run, Tag, Key).
type Write struct {
	Run     keyenc.RunID
	Tag     keyenc.Tag
	Key     []byte
	Kind    keyenc.Kind
	Payload []byte
}

// Store is the versioned record store over one Pebble database.
type Store struct {
	db *pebbleadapter.DB

	seqMu  sync.Mutex
	last   uint64 // highest allocated version; guarded by seqMu
	lastTS int64  // timestamp of the last commit; guarded by seqMu
	// reserved is the version bound stored in the last-version record:
	// every version ever applied is at or below it. A commit that would
	// pass it raises it by block in its own batch. Guarded by seqMu.
	reserved uint64
	block    uint64

	applied atomic.Uint64 // highest version whose batch is in the WAL
	vis     visibility
	latest  *latestIndex
}

// LatestIndexEntries bounds the index of newest versions that turns point
// reads into exact Pebble Gets. An entry takes about 200 bytes of heap (its
// map slot, key string, entry and queue slot), plus its cached record.
const LatestIndexEntries = 1 << 18

// LatestCacheBytes bounds the records the index keeps for reads that need no
// Pebble access (records of at most 512 bytes, header included).
const LatestCacheBytes = 32 << 20

// DefaultIndexMemory is the memory budget of Open's latest index: it gets
// LatestIndexEntries entries and LatestCacheBytes of records (see
// OpenWithIndex).
const DefaultIndexMemory = 64 << 20

// latestIndexSize returns the entries and record bytes of a latest index
// whose budget is memory: an entry per 256 bytes (at least 1,024, at most
// LatestIndexEntries) and half of it for records (at most
// LatestCacheBytes), its entries' keys within keyBytesPerEntry bytes per
// entry on average. Its heap is then about 1.3 times memory, up to about
// 85 MB.
func latestIndexSize(memory int64) (entries, recordBytes int64) {
	return min(max(memory/256, 1024), LatestIndexEntries), min(memory/2, LatestCacheBytes)
}

// VersionBlock is how far one write of the last-version record reserves
// versions ahead: the record is rewritten once per VersionBlock commits, not
// in every commit's batch. After a crash a database continues above the
// reservation, so versions skip ahead by less than VersionBlock; after
// Close they continue at the next version.
const VersionBlock = 1 << 16

var lastVersionKey = keyenc.SystemKey(keyenc.SysLastVersion)

// Open recovers the version bound from db and returns a Store whose
// versions continue above it: above the highest committed version after a
// clean Close, above the last reservation after a crash. Its latest index
// has the budget DefaultIndexMemory.
func Open(db *pebbleadapter.DB) (*Store, error) {
	return OpenWithIndex(db, DefaultIndexMemory)
}

// OpenWithIndex is Open with a latest index sized for a budget of memory
// bytes (see latestIndexSize).
func OpenWithIndex(db *pebbleadapter.DB, memory int64) (*Store, error) {
	s := &Store{db: db, block: VersionBlock}
	v, err := db.Get(lastVersionKey)
	switch {
	case errors.Is(err, serr.ErrNotFound):
		v = nil
	case err != nil:
		return nil, err
	}
	var last uint64
	if v != nil {
		if last, err = keyenc.DecodeUint64(v); err != nil {
			return nil, err
		}
	}
	s.last, s.reserved = last, last
	// Reserve the first block now, with a synced write, so that the
	// commits that follow need no sync of their own until they pass it
	// (see ApplyTo).
	if err := s.storeBound(last + s.block); err != nil {
		return nil, err
	}
	s.applied.Store(last)
	s.vis.init(last)
	entries, recordBytes := latestIndexSize(memory)
	s.latest = newLatestIndex(entries, recordBytes, last, s.applied.Load)
	return s, nil
}

// Visible returns the visible version: every commit at or below it is
// fully applied (and synced, if it asked to be). Snapshots are taken here.
func (s *Store) Visible() uint64 { return s.vis.visible.Load() }

// WaitVisible returns once version v is visible (v at most Applied), or
// with the store's failure.
func (s *Store) WaitVisible(v uint64) error { return s.vis.wait(v) }

// Applied returns the highest version whose batch has reached the WAL. A
// sync barrier issued after reading it makes every version up to it durable.
func (s *Store) Applied() uint64 { return s.applied.Load() }

// Commit is a write set applied at a version but not yet published.
type Commit struct {
	s       *Store
	b       *pebbleadapter.Batch
	Version uint64
	// Timestamp is the commit time in Unix nanoseconds; it never decreases
	// from one version to the next.
	Timestamp int64
	sync      bool
}

// Apply allocates the next version and applies ws at that version in one
// Pebble batch (with a new version reservation when the version passes the
// old one; such a commit is applied with sync even if sync is false, see
// Commit.Synced). Without sync the commit is visible when Apply returns
// (unless an earlier commit is still waiting for its fsync). With sync, the
// fsync is not awaited: call Commit.SyncWait outside any lock (whenever
// Commit.Synced reports true); the commit becomes visible once it is
// durable. Then call Publish. A commit that returns an error was never
// visible to anyone; a storage failure marks the store failed and every
// later Apply fails.
//
// The keys of ws must be distinct, and two Applies that write the same key
// must not overlap (one returns before the other starts): the latest index
// relies on both. Strata's run lock guarantees them, since a key belongs to
// one run.
func (s *Store) Apply(ws []Write, sync bool) (*Commit, error) {
	c := new(Commit)
	if err := s.ApplyTo(context.Background(), c, ws, sync); err != nil {
		return nil, err
	}
	return c, nil
}

// ApplyTo is Apply into a Commit the caller provides (to spare an
// allocation); c is overwritten, and set only if ApplyTo returns nil. If
// ctx is not nil, the commit is refused, with ContextErr's error, when ctx
// has ended by the time the commit is sequenced (just before it gets its
// version): then nothing is written, the error matches IsRefused, and the
// store stays sound.
func (s *Store) ApplyTo(ctx context.Context, c *Commit, ws []Write, sync bool) error {
	if err := s.Err(); err != nil {
		return err
	}
	// Mark the written keys in flight in the latest index before the batch
	// can be visible; record their version after it is applied. Neither
	// needs the sequencing lock.
	var pbuf [128]byte
	var small [16]writeTicket
	tickets := small[:] // of ws[i], if the index tracks its tag
	if len(ws) > len(small) {
		tickets = make([]writeTicket, len(ws))
	}
	for i := range ws {
		if w := &ws[i]; tracked(w.Tag) {
			tickets[i] = s.latest.writing(keyenc.AppendPrefix(pbuf[:0], w.Run, w.Tag, w.Key))
		}
	}
	b := s.db.NewBatch()

	s.seqMu.Lock()
	now := time.Now()
	if ctx != nil {
		// The commit may have waited here behind other runs' commits (a
		// large batch takes long to apply): its deadline is looked at
		// again, at the instant that becomes its timestamp, the last time
		// before it gets a version.
		if err := contextErrAt(ctx, now); err != nil {
			s.seqMu.Unlock()
			b.Close()
			for i := range ws {
				if w := &ws[i]; tracked(w.Tag) {
					s.latest.abandoned(keyenc.AppendPrefix(pbuf[:0], w.Run, w.Tag, w.Key), tickets[i])
				}
			}
			return refusedError{err}
		}
	}
	v := s.last + 1
	ts := now.UnixNano()
	if ts < s.lastTS {
		ts = s.lastTS
	}
	for i := range ws {
		w := &ws[i]
		d := b.SetDeferred(keyenc.PrefixLen(len(w.Key))+keyenc.SuffixLen, keyenc.HeaderLen+len(w.Payload))
		keyenc.AppendVersioned(d.Key[:0], w.Run, w.Tag, w.Key, v)
		copy(d.Value[keyenc.HeaderLen:], w.Payload)
		keyenc.AppendHeader(d.Value[:0], w.Kind, ts)
		d.Finish()
	}
	reserved := s.reserved
	if v > reserved {
		// The reservation travels in the batch of the first version above
		// the old one: the WAL holds it before any version it covers. That
		// batch is synced whatever the commit asked for (once per block of
		// versions): if a crash could lose the new reservation together
		// with acknowledged but unsynced commits above the old one, the
		// reopened store would continue above the old reservation and hand
		// their versions out again. A synced commit holds back the visible
		// version until its fsync is confirmed, so no version above the
		// old reservation is acknowledged before the new one is durable.
		reserved = v - 1 + s.block
		var vrec [8]byte
		binary.BigEndian.PutUint64(vrec[:], reserved) // keyenc.EncodeUint64, without the allocation
		b.Set(lastVersionKey, vrec[:])
		sync = true
	}
	err := b.Apply(sync)
	if err == nil {
		s.last, s.lastTS, s.reserved = v, ts, reserved
		s.applied.Store(v)
		err = s.vis.noteApplied(v, sync)
	}
	s.seqMu.Unlock()

	if err != nil {
		b.Close()
		s.vis.fail(err)
		// In-flight entries and untracked counts stay: those keys read the
		// slow way and their shards learn nothing more from reads (the
		// store has failed; nothing is ever stale).
		return err
	}
	for i := range ws {
		if w := &ws[i]; tracked(w.Tag) {
			s.latest.applied(keyenc.AppendPrefix(pbuf[:0], w.Run, w.Tag, w.Key), tickets[i], v, w.Kind, ts, w.Payload)
		}
	}
	*c = Commit{s: s, b: b, Version: v, Timestamp: ts, sync: sync}
	return nil
}

// ContextErr is ctx.Err(), and context.DeadlineExceeded as soon as ctx's
// deadline has passed, also before its timer has fired (on a busy machine
// it fires late, and an operation after the deadline must fail). The clock
// is read only for a context with a deadline.
func ContextErr(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		return contextErrAt(ctx, time.Now())
	}
	return ctx.Err()
}

// contextErrAt is ContextErr with the clock reading now.
func contextErrAt(ctx context.Context, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !now.Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// refusedError is ApplyTo's error for a commit refused because its context
// ended: it wraps the context's error.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

// IsRefused reports whether err is ApplyTo's refusal of a commit whose
// context ended before it was sequenced (nothing was written).
func IsRefused(err error) bool {
	var r refusedError
	return errors.As(err, &r)
}

// Close records the highest allocated version as the version bound, with a
// synced write, so that the next Open continues at the next version instead
// of above the reservation. Call it once no commit can start; it does
// nothing on a failed store. It also empties the latest index, so that a
// closed store that is still referenced does not hold its memory (reads
// still work, from storage, while the underlying DB is open).
func (s *Store) Close() error {
	defer s.latest.empty()
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	if s.Err() != nil || s.reserved == s.last {
		return nil
	}
	return s.storeBound(s.last)
}

// storeBound writes v as the version bound, with a synced write, and makes
// it the reservation. The caller holds seqMu, or is Open.
func (s *Store) storeBound(v uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	var vrec [8]byte
	binary.BigEndian.PutUint64(vrec[:], v)
	b.Set(lastVersionKey, vrec[:])
	if err := b.Apply(true); err != nil {
		return err
	}
	if err := b.SyncWait(); err != nil {
		return err
	}
	s.reserved = v
	return nil
}

// Synced reports whether the commit was applied with sync: asked for, or
// forced by a new version reservation. Its fsync makes it durable.
func (c *Commit) Synced() bool { return c.sync }

// SyncWait waits for the commit's fsync if it was applied with sync. A
// confirmed fsync makes the commit, and every version below it, durable.
func (c *Commit) SyncWait() error {
	if c.b == nil { // published: the batch's Close waited
		if err := c.s.db.Failed(); err != nil {
			return err
		}
	} else if err := c.b.SyncWait(); err != nil {
		c.s.vis.fail(err)
		return err
	}
	if c.sync {
		c.s.vis.noteSynced(c.Version)
	}
	return nil
}

// Publish releases the batch and waits until the commit is visible: every
// new snapshot then includes it. A commit applied with sync (Synced) must
// have called SyncWait first.
func (c *Commit) Publish() error {
	if c.b != nil {
		c.b.Close()
		c.b = nil // released to a pool
	}
	if err := c.s.vis.wait(c.Version); err != nil {
		return err
	}
	return c.s.db.Failed()
}

// Fail stops the store: the visible version never advances again, commits
// waiting to become visible return err, and Apply refuses new commits. The
// store fails itself when Apply or SyncWait hits a storage error; Fail is for
// a caller that detects a failure elsewhere.
func (s *Store) Fail(err error) { s.vis.fail(err) }

// Err returns the failure recorded by Fail or by a failed write, or nil.
func (s *Store) Err() error {
	if p := s.vis.failed.Load(); p != nil {
		return *p
	}
	return s.db.Failed()
}

// Record is one stored version of a key.
type Record struct {
	Version   uint64
	Timestamp int64
	Kind      keyenc.Kind // KindTombstone for a deletion
	Payload   []byte      // owned by the caller
}

// Deleted reports whether the record is a tombstone.
func (r Record) Deleted() bool { return r.Kind == keyenc.KindTombstone }

// Get returns the newest version of (run, tag, key) at or below version at.
// found is false when the key has no version at or below at. A tombstone is
// returned as found with Kind KindTombstone: callers decide what a deletion
// means for them (a read treats it as absent).
func (s *Store) Get(run keyenc.RunID, tag keyenc.Tag, key []byte, at uint64) (rec Record, found bool, err error) {
	return s.get(run, tag, key, at, at, true)
}

// GetLatest returns the newest version of (run, tag, key) among every
// commit applied so far, visible or not. Commit checks call it under the
// run's commit lock, where every commit of the run is applied.
func (s *Store) GetLatest(run keyenc.RunID, tag keyenc.Tag, key []byte) (Record, bool, error) {
	return s.get(run, tag, key, keyenc.MaxVersion, s.applied.Load(), true)
}

// Stat is Get without the payload (Record.Payload is nil): the version,
// timestamp and kind of the record, read without copying its value, for
// callers that need to know whether and at which version a key exists.
func (s *Store) Stat(run keyenc.RunID, tag keyenc.Tag, key []byte, at uint64) (rec Record, found bool, err error) {
	return s.get(run, tag, key, at, at, false)
}

// StatLatest is GetLatest without the payload (see Stat).
func (s *Store) StatLatest(run keyenc.RunID, tag keyenc.Tag, key []byte) (Record, bool, error) {
	return s.get(run, tag, key, keyenc.MaxVersion, s.applied.Load(), false)
}

// get reads the newest version <= at: with one exact Pebble Get when the
// latest index knows it, otherwise with a seek through an iterator that
// holds every write up to version need. Without payload the record comes
// without its payload, and no value is copied.
func (s *Store) get(run keyenc.RunID, tag keyenc.Tag, key []byte, at, need uint64, payload bool) (rec Record, found bool, err error) {
	var buf [128]byte
	seek := keyenc.AppendVersioned(buf[:0], run, tag, key, at)
	prefix := seek[:keyenc.Split(seek)]
	if !tracked(tag) {
		return s.seek(seek, need, payload)
	}
	if v, cached, ok := s.latest.get(prefix, !payload); ok && v != inFlight && v <= at {
		if v == 0 {
			return Record{}, false, nil
		}
		if cached != nil {
			rec, err := decodeValue(cached, v) // the payload aliases the copy
			if !payload {
				rec.Payload = nil // (a header: the copy held no more)
			}
			return rec, err == nil, err
		}
		exact := keyenc.AppendSuffix(prefix, v) // overwrites the seek suffix in buf
		err := s.db.View(exact, func(raw []byte) (err error) {
			rec, err = ownRecord(raw, v, payload)
			return err
		})
		if errors.Is(err, serr.ErrNotFound) {
			return Record{}, false, fmt.Errorf("key %x: indexed version missing: %w", exact, err)
		}
		if err == nil && payload {
			s.latest.fill(prefix, v, rec.Kind, rec.Timestamp, rec.Payload)
		}
		return rec, err == nil, err
	}
	rec, found, err = s.seek(seek, need, payload)
	if err == nil {
		// The index learns from the read under the rules of latestIndex (the
		// floor, the shard's untracked writes), at the snapshot the seek
		// covered: every version at or below min(at, need). It caches the
		// record only if it has its payload.
		s.latest.read(prefix, min(at, need), rec.Version, rec, payload) // version 0 when absent
	}
	return rec, found, err
}

// ownRecord decodes the stored value raw of version v, which the caller
// does not own: the record gets a copy of the payload, or none.
func ownRecord(raw []byte, v uint64, payload bool) (Record, error) {
	rec, err := decodeValue(raw, v)
	if payload {
		rec.Payload = append([]byte(nil), rec.Payload...)
	} else {
		rec.Payload = nil
	}
	return rec, err
}

// seek reads the newest version at or below the seek key's version with a
// prefix seek through an iterator that holds every write up to version
// need; with payload, the record gets a copy of the payload.
func (s *Store) seek(seek []byte, need uint64, payload bool) (rec Record, found bool, err error) {
	it, err := s.db.AcquirePointIter(need, s.applied.Load)
	if err != nil {
		return rec, false, err
	}
	if it.SeekPrefixGE(seek) {
		rec, err = aliasRecord(it, keyenc.Version(it.Key()))
		if payload {
			rec.Payload = append([]byte(nil), rec.Payload...)
		} else {
			rec.Payload = nil
		}
		found = err == nil
	}
	if rerr := s.db.ReleasePointIter(it); err == nil && rerr != nil {
		return Record{}, false, rerr
	}
	return rec, found, err
}

// decodeRecord decodes the record at the iterator's position, copying the
// payload.
func decodeRecord(it *pebbleadapter.Iter) (Record, error) {
	rec, err := aliasRecord(it, keyenc.Version(it.Key()))
	if err == nil {
		rec.Payload = append([]byte(nil), rec.Payload...)
	}
	return rec, err
}

// aliasRecord decodes the record of version v at the iterator's position;
// the payload aliases the iterator's value, valid until it moves.
func aliasRecord(it *pebbleadapter.Iter, v uint64) (Record, error) {
	raw, err := it.Value()
	if err != nil {
		return Record{}, err
	}
	rec, err := decodeValue(raw, v)
	if err != nil {
		return Record{}, fmt.Errorf("key %x: %w", it.Key(), err)
	}
	return rec, nil
}

// decodeValue decodes a stored value of version v; the payload aliases raw.
func decodeValue(raw []byte, v uint64) (Record, error) {
	h, payload, err := keyenc.DecodeHeader(raw)
	if err != nil {
		return Record{}, err
	}
	return Record{Version: v, Timestamp: h.Timestamp, Kind: h.Kind, Payload: payload}, nil
}
