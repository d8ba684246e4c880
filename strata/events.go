package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/pebbleadapter"
)

// Event is an event of a run's log as read: the hashed record (sequence,
// type, payload, timestamp, previous hash, hash) and the commit version
// that appended it (0 for the transaction's own, uncommitted append).
type Event struct {
	events.Event
	Version uint64
}

// EventData is an event to append: its type and its payload, which must be
// an object.
type EventData struct {
	Type    string
	Payload Value
}

// Event keys: TagEvent with the sequence as an 8-byte big-endian user key,
// so that key order is sequence order. The run's head record (length and
// last hash) is the TagRunMeta key "event-head"; every append rewrites it in
// the same commit, so appending costs the same whatever the log's length.
var eventHeadKey = []byte("event-head")

// eventKey returns the key of sequence seq in buf.
func eventKey(buf *[8]byte, seq uint64) []byte {
	binary.BigEndian.PutUint64(buf[:], seq)
	return buf[:]
}

// preparedEvent is an event validated and encoded, waiting for its
// sequence and previous hash.
type preparedEvent struct {
	typ     string
	payload []byte // canonical encoding
}

func prepareEvent(typ string, payload Value) (preparedEvent, error) {
	if err := events.ValidateType(typ); err != nil {
		return preparedEvent{}, err
	}
	enc, err := events.EncodePayload(payload, MaxValueSize)
	if err != nil {
		return preparedEvent{}, err
	}
	return preparedEvent{typ: typ, payload: enc}, nil
}

func prepareEvents(batch []EventData) ([]preparedEvent, error) {
	if len(batch) == 0 {
		return nil, fmt.Errorf("%w: empty event batch", events.ErrInvalidEvent)
	}
	out := make([]preparedEvent, len(batch))
	for i, e := range batch {
		p, err := prepareEvent(e.Type, e.Payload)
		if err != nil {
			return nil, fmt.Errorf("event %d of the batch: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

// chainEvents links prepared events after head, all with timestamp ts. It
// returns the writes (each event's record, then the new head) appended to
// ws, and the linked events (their payloads left for the caller to fill).
// run is the run the hashes bind the events to. A head too long to take
// the events (no log ever holds 2^64 events: its length was tampered with)
// is ErrCorruption, and nothing is appended.
func chainEvents(run RunID, head events.Head, ts int64, evs []preparedEvent, ws []mvcc.Write) ([]mvcc.Write, []events.Event, error) {
	if head.Len > math.MaxUint64-uint64(len(evs)) {
		return nil, nil, fmt.Errorf("%w: event log head of length %d has no room for %d more events", ErrCorruption, head.Len, len(evs))
	}
	out := make([]events.Event, len(evs))
	for i, p := range evs {
		e := events.Event{Sequence: head.Len, Type: p.typ, Timestamp: ts, PrevHash: head.Hash}
		e.Hash = events.ComputeHash(run, e.Sequence, p.typ, ts, p.payload, e.PrevHash)
		rec := events.AppendRecord(make([]byte, 0, 80+len(p.typ)+len(p.payload)), &e, p.payload)
		key := binary.BigEndian.AppendUint64(nil, e.Sequence)
		ws = append(ws, mvcc.Write{Run: run, Tag: keyenc.TagEvent, Key: key, Kind: keyenc.KindBytes, Payload: rec})
		head = events.Head{Len: head.Len + 1, Hash: e.Hash}
		out[i] = e
	}
	ws = append(ws, mvcc.Write{Run: run, Tag: keyenc.TagRunMeta, Key: eventHeadKey, Kind: keyenc.KindBytes, Payload: events.AppendHead(nil, head)})
	return ws, out, nil
}

// writesSize is the size of ws as MaxTxnSize counts it: keys and values.
func writesSize(ws []mvcc.Write) int {
	size := 0
	for _, w := range ws {
		size += len(w.Key) + len(w.Payload)
	}
	return size
}

// bytesPayload returns the payload of a stored record of Strata's own
// format: an event, the event log head, a state cell, or the retention and
// GC horizon records. Strata stores those with kind keyenc.KindBytes only;
// any other kind is corruption.
func bytesPayload(rec mvcc.Record) ([]byte, error) {
	if rec.Kind != keyenc.KindBytes {
		return nil, fmt.Errorf("%w: record kind %d where Strata stores kind %d", ErrCorruption, rec.Kind, keyenc.KindBytes)
	}
	return rec.Payload, nil
}

// decodeHeadRecord decodes a head record as read from the store. An absent
// or deleted head is the empty log's; the caller checks that the run has no
// events then (see checkNoOrphanEvents).
func decodeHeadRecord(rec mvcc.Record, found bool) (events.Head, error) {
	if !found || rec.Deleted() {
		return events.Head{}, nil
	}
	b, err := bytesPayload(rec)
	if err != nil {
		return events.Head{}, fmt.Errorf("event log head: %w", err)
	}
	h, err := events.DecodeHead(b)
	if err != nil {
		return events.Head{}, fmt.Errorf("event log head: %w", err)
	}
	return h, nil
}

// decodeEventRecord decodes a stored event record, leaving its payload
// encoded.
func decodeEventRecord(seq uint64, rec mvcc.Record) (events.Record, error) {
	b, err := bytesPayload(rec)
	if err == nil {
		var r events.Record
		if r, err = events.DecodeRecord(b); err == nil {
			return r, nil
		}
	}
	return events.Record{}, fmt.Errorf("event %d: %w", seq, err)
}

// decodeEvent decodes a stored event record.
func decodeEvent(seq uint64, rec mvcc.Record) (Event, error) {
	r, err := decodeEventRecord(seq, rec)
	if err != nil {
		return Event{}, err
	}
	e, err := r.Event(seq)
	if err != nil {
		return Event{}, err
	}
	return Event{Event: e, Version: rec.Version}, nil
}

// --- in a transaction ---

// eventHead returns the run's log head as the transaction sees it,
// recording the read: every append changes the head, so a concurrent
// append makes this transaction's commit conflict. A run whose head is
// missing while its events are not is corrupt (see checkNoOrphanEvents):
// neither a read nor an append takes it for an empty log.
func (t *Txn) eventHead() (events.Head, error) {
	if err := t.check(); err != nil {
		return events.Head{}, err
	}
	if err := t.run.Validate(); err != nil {
		return events.Head{}, err
	}
	rec, found, err := t.read(keyenc.TagRunMeta, eventHeadKey, true)
	if err != nil {
		return events.Head{}, err
	}
	head, err := decodeHeadRecord(rec, found)
	if err != nil {
		return head, t.failRead(err)
	}
	if head.Len > 0 || t.noOrphanEvents {
		return head, nil
	}
	// Only a stored head can be empty: the transaction's own head write
	// follows its own appends.
	if err := t.db.checkNoOrphanEvents(t.run, t.snap); err != nil {
		return head, t.failRead(err)
	}
	t.noOrphanEvents = true
	return head, nil
}

// AppendEvent appends an event to the run's log when the transaction
// commits and returns its sequence. The event's timestamp is the wall-clock
// time of this call (so a transaction's events may carry a time earlier
// than an event a concurrent commit appended before them). Appends read the
// log's head, so two transactions appending to one run conflict (one
// commits; retry the other); the log never has a gap.
func (t *Txn) AppendEvent(typ string, payload Value) (uint64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	p, err := prepareEvent(typ, payload)
	if err != nil {
		return 0, err
	}
	return t.appendEvents([]preparedEvent{p})
}

// AppendEvents appends a batch of events with contiguous sequences and one
// timestamp, all or nothing, and returns the first sequence. An invalid
// event anywhere in the batch appends none, and reads nothing: a refused
// batch leaves no read of the log head behind to conflict at commit.
func (t *Txn) AppendEvents(batch []EventData) (uint64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	evs, err := prepareEvents(batch)
	if err != nil {
		return 0, err
	}
	return t.appendEvents(evs)
}

// appendEvents appends checked events after the log head, which it reads.
func (t *Txn) appendEvents(evs []preparedEvent) (uint64, error) {
	if t.tooLarge != nil {
		return 0, t.tooLarge
	}
	head, err := t.eventHead()
	if err != nil {
		return 0, err
	}
	ws, _, err := chainEvents(t.run, head, time.Now().UnixNano(), evs, nil)
	if err != nil {
		return 0, err
	}
	// Check the size of every write first, so that the batch is buffered
	// whole or not at all: the events are new keys, the head replaces the
	// transaction's own head write if it has one.
	size := t.size + writesSize(ws)
	if old, ok := t.writes.get(t.tkey(keyenc.TagRunMeta, eventHeadKey)); ok {
		size -= len(eventHeadKey) + len(old.payload)
	}
	if size > MaxTxnSize {
		return 0, t.refuseSize(size)
	}
	for _, w := range ws {
		if err := t.write(w.Tag, w.Key, txnWrite{kind: w.Kind, payload: w.Payload}, false); err != nil {
			return 0, err // unreachable: the whole batch fits
		}
	}
	if t.eventsEnd == 0 {
		// The first append sees the stored head (the transaction's own head
		// write follows its own appends).
		t.eventsBase = head.Len
	}
	t.eventsEnd = head.Len + uint64(len(evs))
	return head.Len, nil
}

// EventLen returns the number of events in the run's log.
func (t *Txn) EventLen() (uint64, error) {
	h, err := t.eventHead()
	return h.Len, err
}

// EventHead returns the run's log head: its length and the last hash.
func (t *Txn) EventHead() (events.Head, error) { return t.eventHead() }

// Event returns the event at sequence seq, or ErrNotFound past the end.
func (t *Txn) Event(seq uint64) (Event, error) {
	head, err := t.eventHead()
	if err != nil {
		return Event{}, err
	}
	if seq >= head.Len {
		return Event{}, fmt.Errorf("event %d of %d: %w", seq, head.Len, ErrNotFound)
	}
	return t.event(seq)
}

// event reads an event below the head the transaction saw. Events never
// change once appended, and the head read already covers appends, so the
// event key itself is not added to the read set.
func (t *Txn) event(seq uint64) (Event, error) {
	var kb [8]byte
	k := eventKey(&kb, seq)
	if w, ok := t.writes.get(t.tkey(keyenc.TagEvent, k)); ok {
		return decodeEvent(seq, mvcc.Record{Kind: w.kind, Payload: w.payload})
	}
	rec, found, err := t.db.store.Get(keyenc.RunID(t.run), keyenc.TagEvent, k, t.snap)
	if err != nil {
		return Event{}, t.failRead(err)
	}
	if !found || rec.Deleted() {
		return Event{}, t.failRead(missingEvent(seq))
	}
	e, err := decodeEvent(seq, rec)
	if err != nil {
		return Event{}, t.failRead(err)
	}
	return e, nil
}

// storedEventLen returns the log's length at the snapshot, before the
// transaction's own appends; head is the log head the transaction sees.
// (The transaction read the stored head when it first appended, so this
// second look records nothing.)
func (t *Txn) storedEventLen(head events.Head) (uint64, error) {
	if _, own := t.writes.get(t.tkey(keyenc.TagRunMeta, eventHeadKey)); !own {
		return head.Len, nil
	}
	rec, found, err := t.db.store.Get(keyenc.RunID(t.run), keyenc.TagRunMeta, eventHeadKey, t.snap)
	if err == nil {
		var stored events.Head
		if stored, err = decodeHeadRecord(rec, found); err == nil {
			return stored.Len, nil
		}
	}
	return 0, t.failRead(err)
}

// EventRange returns the events with sequences in [start, end), in order;
// end is capped at the log's length.
func (t *Txn) EventRange(start, end uint64) ([]Event, error) {
	head, err := t.eventHead()
	if err != nil {
		return nil, err
	}
	end = min(end, head.Len)
	if start >= end {
		return nil, nil
	}
	stored, err := t.storedEventLen(head)
	if err != nil {
		return nil, err
	}
	// The committed events come from one scan at the snapshot, up to the
	// snapshot's length; the transaction's own appends follow them.
	out := make([]Event, 0, min(end-start, 1<<16))
	next, err := t.db.scanEvents(t.ctx, t.run, t.snap, start, min(end, stored), func(seq uint64, rec mvcc.Record) error {
		e, err := decodeEvent(seq, rec)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, t.failRead(err)
	}
	for ; next < end; next++ {
		e, err := t.event(next)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := ctxErr(t.ctx); err != nil {
		return nil, err // a long range ends at the deadline too
	}
	return out, nil
}

// --- direct ---

// AppendEvent appends an event to run's log as a commit of its own and
// returns it, with its sequence, hash and commit version. Concurrent
// appends to one run never conflict: the sequence and previous hash are
// taken under the run's commit lock.
func (db *Database) AppendEvent(ctx context.Context, run RunID, typ string, payload Value) (Event, error) {
	p, err := prepareEvent(typ, payload)
	if err != nil {
		return Event{}, err
	}
	evs, err := db.appendEvents(ctx, run, []preparedEvent{p}, []Value{payload})
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// AppendEvents appends a batch of events with contiguous sequences and one
// timestamp in one commit, all or nothing, and returns them.
func (db *Database) AppendEvents(ctx context.Context, run RunID, batch []EventData) ([]Event, error) {
	evs, err := prepareEvents(batch)
	if err != nil {
		return nil, err
	}
	payloads := make([]Value, len(batch))
	for i, e := range batch {
		payloads[i] = e.Payload
	}
	return db.appendEvents(ctx, run, evs, payloads)
}

func (db *Database) appendEvents(ctx context.Context, run RunID, evs []preparedEvent, payloads []Value) ([]Event, error) {
	if err := run.Validate(); err != nil {
		return nil, err
	}
	if err := db.enter(ctx); err != nil {
		return nil, err
	}
	defer db.leave()
	rs := db.runs.acquire(run) // for the commit, and for its event tail
	defer rs.release()
	var linked []events.Event
	res, err := db.commitBuiltIn(ctx, rs, func(uint64) ([]mvcc.Write, error) {
		// Under the run's commit lock every commit of the run is applied:
		// the newest head is the one to extend.
		rec, found, err := db.store.GetLatest(keyenc.RunID(run), keyenc.TagRunMeta, eventHeadKey)
		if err != nil {
			return nil, err
		}
		head, err := decodeHeadRecord(rec, found)
		if err != nil {
			return nil, err
		}
		if err := db.checkEventTail(rs, run, head.Len); err != nil {
			return nil, err
		}
		// The time is read under the lock, so that direct appends to a run
		// carry nondecreasing timestamps as long as the clock does.
		var ws []mvcc.Write
		if ws, linked, err = chainEvents(run, head, time.Now().UnixNano(), evs, make([]mvcc.Write, 0, len(evs)+1)); err != nil {
			return nil, err
		}
		// A direct batch is one commit, held to the transaction size limit.
		if size := writesSize(ws); size > MaxTxnSize {
			return nil, fmt.Errorf("%w: an event batch of %d bytes of writes exceeds %d", ErrTxnTooLarge, size, MaxTxnSize)
		}
		appendedEventTail(rs, head.Len+uint64(len(evs)))
		return ws, nil
	}, db.dur.Mode())
	if err != nil {
		return nil, err
	}
	out := make([]Event, len(evs))
	for i, e := range linked {
		e.Payload = payloads[i]
		out[i] = Event{Event: e, Version: res.version}
	}
	return out, nil
}

// checkNoOrphanEvents, for a run whose log head is absent (or deleted or
// empty, which Strata never writes), makes sure it stores no event either:
// a log whose head was lost must not be read as empty, nor appended to from
// sequence 0 again (that would hide or overwrite the stored events). It
// looks at version at (keyenc.MaxVersion: the latest commit, for a caller
// holding the run's commit lock). It costs an iterator, so callers run it
// only when the head says the log is empty.
func (db *Database) checkNoOrphanEvents(run RunID, at uint64) error {
	seq, found, err := db.storedEventFrom(run, 0, at)
	if err == nil && found {
		err = fmt.Errorf("%w: run %s stores event %d but its event log head is missing or empty", ErrCorruption, run, seq)
	}
	return err
}

// checkEventTail makes sure run stores no event at or past headLen, the
// length of the run's newest log head, where an append is about to write:
// Strata keeps every stored event below the log's head, so a stored event
// there means a head rolled back by someone else, and an append must not
// write over that event (VerifyEvents reports it as an event beyond the
// head). The caller holds the run's commit lock, so headLen is the newest
// head's and no append is under way; the look is at every stored version,
// those above the visible version included.
//
// Appends keep the tail clean, so rs remembers the head length, plus one,
// past which the last check or the last append left nothing stored, and
// the appends that follow look once per run state, not once each. A head
// of length L with eventTail L+1 has nothing stored past it: a check found
// nothing at or past some L0 <= L, and the appends since wrote only below L
// (an append refused after it set eventTail wrote nothing at all). Only
// the holder of the run's lock sets it, and what it remembers stays true
// while the database is open: nothing else writes the store.
func (db *Database) checkEventTail(rs *runState, run RunID, headLen uint64) error {
	if tail := rs.eventTail.Load(); tail != 0 && tail == headLen+1 {
		return nil
	}
	seq, found, err := db.storedEventFrom(run, headLen, keyenc.MaxVersion)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("%w: run %s stores event %d, at or past its event log head's length %d: an append would write over it", ErrCorruption, run, seq, headLen)
	}
	rs.eventTail.Store(headLen + 1)
	return nil
}

// appendedEventTail records, under the run's commit lock, that an append
// that passed checkEventTail makes the log's head length end: nothing is
// stored past it.
func appendedEventTail(rs *runState, end uint64) { rs.eventTail.Store(end + 1) }

// storedEventFrom returns the sequence of the first event key run stores
// at or past sequence from, at version at. From 0 it looks from the start
// of the event tag, so that a stored key too short to be a sequence is
// found too (as ErrCorruption). It costs an iterator.
func (db *Database) storedEventFrom(run RunID, from, at uint64) (seq uint64, found bool, err error) {
	var kb [8]byte
	var start []byte
	if from > 0 {
		start = eventKey(&kb, from)
	}
	for e, err := range db.store.Scan(keyenc.RunID(run), keyenc.TagEvent, nil, start, at) {
		if err != nil {
			return 0, false, err
		}
		seq, err := eventSeq(e.Key)
		return seq, err == nil, err
	}
	return 0, false, nil
}

// EventLen returns the number of events in run's log.
func (db *Database) EventLen(ctx context.Context, run RunID) (n uint64, err error) {
	err = db.readTxn(ctx, run, func(t *Txn) error { n, err = t.EventLen(); return err })
	return noResultOnError(n, err)
}

// EventHead returns run's log head: its length and the hash of its last
// event.
func (db *Database) EventHead(ctx context.Context, run RunID) (h events.Head, err error) {
	err = db.readTxn(ctx, run, func(t *Txn) error { h, err = t.EventHead(); return err })
	return noResultOnError(h, err)
}

// Event returns the event at sequence seq of run's log, or ErrNotFound.
func (db *Database) Event(ctx context.Context, run RunID, seq uint64) (e Event, err error) {
	err = db.readTxn(ctx, run, func(t *Txn) error { e, err = t.Event(seq); return err })
	return noResultOnError(e, err)
}

// EventRange returns the events of run with sequences in [start, end), in
// order; end is capped at the log's length. All are read at one snapshot.
func (db *Database) EventRange(ctx context.Context, run RunID, start, end uint64) (evs []Event, err error) {
	err = db.readTxn(ctx, run, func(t *Txn) error { evs, err = t.EventRange(start, end); return err })
	return noResultOnError(evs, err)
}

// EventRangeReverse is EventRange newest first: sequences end-1 down to
// start.
func (db *Database) EventRangeReverse(ctx context.Context, run RunID, start, end uint64) ([]Event, error) {
	evs, err := db.EventRange(ctx, run, start, end)
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs, err
}

// EventsByType returns the events of run whose type is typ, in sequence
// order, at one snapshot. It reads the whole log: O(length). A type no
// event can have (empty, too long, not UTF-8) is an events.ErrInvalidEvent.
func (db *Database) EventsByType(ctx context.Context, run RunID, typ string) ([]Event, error) {
	if err := events.ValidateType(typ); err != nil {
		return nil, err // no event can have it
	}
	var out []Event
	err := db.readTxn(ctx, run, func(t *Txn) error {
		head, err := t.eventHead()
		if err != nil {
			return err
		}
		next, err := db.scanEvents(t.ctx, run, t.snap, 0, head.Len, func(seq uint64, rec mvcc.Record) error {
			r, err := decodeEventRecord(seq, rec)
			if err != nil {
				return err
			}
			if r.Type != typ {
				return nil
			}
			e, err := r.Event(seq)
			if err != nil {
				return err
			}
			out = append(out, Event{Event: e, Version: rec.Version})
			return nil
		})
		if err == nil && next < head.Len {
			err = missingEvent(next) // a direct read has no appends of its own
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanEvents calls fn for each stored event of run with a sequence in
// [start, end), in order, at version at, and returns the sequence after the
// last one. The stored events must be contiguous from start: a gap is a
// missing event. They may end before end (a transaction's own appends
// follow them); the caller decides whether that is a fault. It stops with
// ctx's error once ctx has ended (see eventCtxEvery).
func (db *Database) scanEvents(ctx context.Context, run RunID, at, start, end uint64, fn func(seq uint64, rec mvcc.Record) error) (next uint64, err error) {
	var kb [8]byte
	next = start
	for e, err := range db.store.Scan(keyenc.RunID(run), keyenc.TagEvent, nil, eventKey(&kb, start), at) {
		if err != nil {
			return next, err
		}
		if (next-start)%eventCtxEvery == 0 {
			if err := ctxErr(ctx); err != nil {
				return next, err
			}
		}
		seq, err := eventSeq(e.Key)
		if err != nil || seq >= end {
			return next, err
		}
		if seq != next {
			return next, missingEvent(next)
		}
		if err := fn(seq, e.Record); err != nil {
			return next, err
		}
		next++
	}
	return next, nil
}

// eventCtxEvery is how many events a scan of the log reads between two
// looks at its context's deadline (a look reads the clock).
const eventCtxEvery = 64

// eventSeq decodes the sequence of an event key.
func eventSeq(key []byte) (uint64, error) {
	if len(key) != 8 {
		return 0, fmt.Errorf("%w: event key of %d bytes", ErrCorruption, len(key))
	}
	return binary.BigEndian.Uint64(key), nil
}

// missingEvent is the error of a read that finds no stored event seq below
// the log head.
func missingEvent(seq uint64) error {
	return fmt.Errorf("%w: event %d is missing below the log head", ErrCorruption, seq)
}

// EventAnchor returns an anchor for run's newest event: (run, sequence,
// hash). Keep it outside the database; VerifyEvents against it detects a
// truncated log and a tail rewritten with recomputed hashes, which nothing
// inside the database can. An empty log returns ErrNotFound.
//
// The anchored events are durable when it returns: if the head it anchors
// is above the durable version (a Batched or None commit, or a weaker
// per-transaction durability), EventAnchor syncs the WAL first, as Flush
// does. Otherwise a crash could take back events the anchor
// names, the next appends would reuse their sequences, and verification
// against the anchor would report a truncated or rewritten log that nobody
// tampered with. (An ephemeral database has nothing durable to anchor to.)
//
// The read and the sync are one call for Shutdown and Close: once the call
// is admitted, they wait for both.
func (db *Database) EventAnchor(ctx context.Context, run RunID) (events.Anchor, error) {
	if err := run.Validate(); err != nil {
		return events.Anchor{}, err
	}
	if err := db.enter(ctx); err != nil {
		return events.Anchor{}, err
	}
	defer db.leave()
	var (
		h        events.Head
		headVers uint64 // the version that wrote the head read
	)
	err := db.Transaction(ctx, run, func(t *Txn) (err error) {
		if h, err = t.eventHead(); err != nil {
			return err
		}
		headVers = t.reads[string(t.tkey(keyenc.TagRunMeta, eventHeadKey))]
		return t.checkNewestEvent(h)
	}, directOp, admittedOp)
	if err != nil {
		return events.Anchor{}, err
	}
	a, ok := h.Anchor(run)
	if !ok {
		return events.Anchor{}, fmt.Errorf("run %s has no events: %w", run, ErrNotFound)
	}
	if db.persist == PersistenceDisk && db.dur.Durable() < headVers {
		if _, err := db.dur.Sync(); err != nil { // Flush's sync, within this call's admission
			return events.Anchor{}, err
		}
	}
	return a, nil
}

// checkNewestEvent makes sure the log's newest event, as head names it, is
// stored, and that its stored hash is both the head's and the hash its
// fields recompute to: an anchor is kept outside the database as the trust
// root of later verifications, so EventAnchor must not anchor a hash the
// log does not hold (a head tampered with, or an event whose stored hash
// was). It does not walk the chain: VerifyEvents does, and names the fault.
func (t *Txn) checkNewestEvent(h events.Head) error {
	if h.Len == 0 {
		return nil
	}
	seq := h.Len - 1
	var kb [8]byte
	rec, found, err := t.db.store.Get(keyenc.RunID(t.run), keyenc.TagEvent, eventKey(&kb, seq), t.snap)
	if err != nil {
		return err
	}
	if !found || rec.Deleted() {
		return missingEvent(seq)
	}
	r, err := decodeEventRecord(seq, rec)
	if err != nil {
		return err
	}
	if r.Hash != h.Hash {
		return fmt.Errorf("%w: the event log head's hash %v is not event %d's stored hash %v", ErrCorruption, h.Hash, seq, r.Hash)
	}
	if got := events.ComputeHash(t.run, seq, r.Type, r.Timestamp, r.Payload, r.PrevHash); got != r.Hash {
		return fmt.Errorf("%w: event %d's stored hash %v is not the hash of its fields, %v", ErrCorruption, seq, r.Hash, got)
	}
	return nil
}

// isRecordCorruption reports whether err is a stored record that does not
// decode, a verdict on that record, as opposed to a failure to read it (a
// block failing Pebble's checksum included).
func isRecordCorruption(err error) bool {
	return errors.Is(err, ErrCorruption) && !pebbleadapter.IsStorageCorruption(err)
}

// VerifyEvents walks run's event chain at the visible version and checks
// each event's previous hash and recomputed hash, then the run's stored
// head, then the anchor if one is given. The result names the first bad
// sequence and the reason; its Err method turns it into an error matching
// ErrCorruption. The returned error is for failures to read at all,
// including Pebble's own checksum failures (also matching ErrCorruption,
// with a zero Verification): a damaged block holds many records, so it is
// not a verdict on any one event or on the head.
func (db *Database) VerifyEvents(ctx context.Context, run RunID, anchor *events.Anchor) (events.Verification, error) {
	var out events.Verification
	err := db.readTxn(ctx, run, func(t *Txn) error {
		v := events.NewVerifier(run, anchor)
		n := 0
		// From the start of the tag, not from sequence 0's key: a stored
		// key shorter than a sequence sorts before it.
		for e, err := range db.store.Scan(keyenc.RunID(run), keyenc.TagEvent, nil, nil, t.snap) {
			if n++; n%eventCtxEvery == 0 {
				if err := ctxErr(ctx); err != nil {
					return err // a verification cut short is no verdict
				}
			}
			if err != nil {
				// A stored value that does not decode under a well-formed
				// event key is that event's fault, not a failure to read.
				if seq, serr := eventSeq(e.Key); serr == nil && isRecordCorruption(err) {
					v.AddCorrupt(seq, err)
					break
				}
				return err
			}
			seq, err := eventSeq(e.Key)
			if err != nil {
				return err
			}
			b, err := bytesPayload(e.Record)
			if err != nil {
				v.AddCorrupt(seq, err)
				break
			}
			if !v.Add(seq, b) {
				break
			}
		}
		rec, found, err := db.store.Get(keyenc.RunID(run), keyenc.TagRunMeta, eventHeadKey, t.snap)
		if err != nil {
			if isRecordCorruption(err) {
				out = v.FinishCorruptHead(err)
				return nil
			}
			return err
		}
		if !found || rec.Deleted() {
			out = v.Finish(nil)
			return nil
		}
		head, err := decodeHeadRecord(rec, found)
		if err != nil {
			out = v.FinishCorruptHead(err)
			return nil
		}
		out = v.Finish(&head)
		return nil
	})
	return noResultOnError(out, err) // no verdict with an error
}
