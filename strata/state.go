package strata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/value"
)

// ErrStateExists: StateInit found the cell already initialised.
var ErrStateExists = errors.New("strata: state cell already exists")

// State is a state cell as read: its value, its per-cell counter, and the
// commit that wrote it.
//
// The counter starts at 1 when a cell is first initialised and grows by one
// with every write. It is never reused for a name: a deleted cell keeps its
// counter, and a later init continues from it, so a compare-and-swap that
// expects a counter of an earlier incarnation can never succeed (no ABA).
// That holds for writes that survive: a crash in Batched or None mode can
// take back acknowledged writes above the durable version, and the cell's
// next write then gets the same counter as a lost one.
type State struct {
	Name    string
	Value   Value
	Counter uint64
	// Version is the commit version that wrote this counter and Timestamp
	// its commit time (0 and the zero time for the transaction's own,
	// uncommitted write).
	Version   uint64
	Timestamp time.Time
}

// Stored state record (the value of a TagState key, stored with record kind
// keyenc.KindBytes); see docs/format.md:
//
//	byte 0      record version (1)
//	byte 1      flags: 0 live, 1 deleted
//	bytes 2-9   counter, uint64 big-endian
//	then        the value's canonical encoding (live cells only)
const (
	stateRecordVersion = 1
	stateLive          = 0
	stateDeleted       = 1
	stateHeaderLen     = 10
)

// stateRecord is a decoded state record.
type stateRecord struct {
	deleted bool
	counter uint64
	value   []byte // canonical encoding; aliases the decoded bytes
}

func appendStateRecord(dst []byte, r stateRecord) []byte {
	flags := byte(stateLive)
	if r.deleted {
		flags = stateDeleted
	}
	dst = append(dst, stateRecordVersion, flags)
	dst = binary.BigEndian.AppendUint64(dst, r.counter)
	return append(dst, r.value...)
}

func decodeStateRecord(b []byte) (stateRecord, error) {
	if len(b) < stateHeaderLen {
		return stateRecord{}, fmt.Errorf("%w: state record of %d bytes", ErrCorruption, len(b))
	}
	if b[0] != stateRecordVersion {
		return stateRecord{}, fmt.Errorf("%w: state record version %d", ErrCorruption, b[0])
	}
	r := stateRecord{counter: binary.BigEndian.Uint64(b[2:10]), value: b[stateHeaderLen:]}
	switch b[1] {
	case stateLive:
		if r.counter == 0 {
			return stateRecord{}, fmt.Errorf("%w: live state record with counter 0", ErrCorruption)
		}
	case stateDeleted:
		r.deleted = true
		if len(r.value) != 0 {
			return stateRecord{}, fmt.Errorf("%w: deleted state record carries a value", ErrCorruption)
		}
	default:
		return stateRecord{}, fmt.Errorf("%w: state record flags %#x", ErrCorruption, b[1])
	}
	return r, nil
}

// decodeState decodes a stored state record, checking its record kind.
func decodeState(rec mvcc.Record) (stateRecord, error) {
	b, err := bytesPayload(rec)
	if err != nil {
		return stateRecord{}, err
	}
	return decodeStateRecord(b)
}

// checkStateName validates a state cell name: non-empty valid UTF-8 of at
// most MaxKeySize bytes.
func checkStateName(run RunID, name string) error {
	if err := checkKey(run, []byte(name)); err != nil {
		return err
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: state cell name is not valid UTF-8", ErrInvalidKey)
	}
	return nil
}

// stateValue is a cell value to write: v, or its encoding enc if a direct
// call encoded it already (to check it before its transaction began).
type stateValue struct {
	v   Value
	enc []byte // nil: not encoded yet (an encoding is never empty)
}

func (s stateValue) encoded() ([]byte, error) {
	if s.enc != nil {
		return s.enc, nil
	}
	return encodeStateValue(s.v)
}

// checkStateWrite checks a direct call's cell name and value before its
// transaction begins (so that bad arguments are reported before ErrClosed
// or a context error), and returns the value to write.
func checkStateWrite(run RunID, name string, v Value) (stateValue, error) {
	if err := checkStateName(run, name); err != nil {
		return stateValue{}, err
	}
	enc, err := encodeStateValue(v)
	if err != nil {
		return stateValue{}, err
	}
	return stateValue{enc: enc}, nil
}

// checkStatePrefix checks a cell name prefix to list.
func checkStatePrefix(run RunID, prefix string) error {
	if err := run.Validate(); err != nil {
		return err
	}
	if err := checkPrefix([]byte(prefix)); err != nil {
		return err
	}
	if !utf8.ValidString(prefix) {
		return fmt.Errorf("%w: state cell name prefix is not valid UTF-8", ErrInvalidKey)
	}
	return nil
}

// encodeStateValue returns the canonical encoding of a state value.
func encodeStateValue(v Value) ([]byte, error) {
	return value.AppendLimit(nil, v, MaxValueSize)
}

// stateAt returns the cell's stored record as the transaction sees it (its
// own write, or the snapshot), recording the read. found is false when the
// cell never existed.
func (t *Txn) stateAt(name string) (r stateRecord, rec mvcc.Record, found bool, err error) {
	if err := t.check(); err != nil {
		return stateRecord{}, mvcc.Record{}, false, err
	}
	if err := checkStateName(t.run, name); err != nil {
		return stateRecord{}, mvcc.Record{}, false, err
	}
	rec, found, err = t.read(keyenc.TagState, []byte(name), true)
	if err != nil || !found {
		return stateRecord{}, mvcc.Record{}, false, err
	}
	r, err = decodeState(rec)
	if err != nil {
		return stateRecord{}, mvcc.Record{}, false, t.failRead(fmt.Errorf("state cell %q: %w", name, err))
	}
	return r, rec, true, nil
}

// StateRead returns the cell name, or ErrNotFound if it was never
// initialised or is deleted. The read is validated at commit.
func (t *Txn) StateRead(name string) (State, error) {
	r, rec, found, err := t.stateAt(name)
	if err != nil {
		return State{}, err
	}
	if !found || r.deleted {
		return State{}, ErrNotFound
	}
	v, err := value.Decode(r.value)
	if err != nil {
		// A stored cell whose value does not decode is a failed read, as
		// Get's record that does not decode: the transaction cannot commit.
		return State{}, t.failRead(fmt.Errorf("state cell %q: %w", name, err))
	}
	return State{Name: name, Value: v, Counter: r.counter, Version: rec.Version, Timestamp: commitTime(rec)}, nil
}

// StateInit creates the cell name with value v and returns its counter: 1
// for a new name, or one more than the deleted cell's last counter. It
// fails with ErrStateExists if the cell exists. Of concurrent inits of one
// cell exactly one commits; the others conflict.
func (t *Txn) StateInit(name string, v Value) (uint64, error) {
	return t.stateInit(name, stateValue{v: v})
}

func (t *Txn) stateInit(name string, v stateValue) (uint64, error) {
	r, _, found, err := t.stateAt(name)
	if err != nil {
		return 0, err
	}
	if found && !r.deleted {
		return 0, fmt.Errorf("%w: %q has counter %d", ErrStateExists, name, r.counter)
	}
	return t.stateWrite(name, r.counter+1, v)
}

// StateSet writes v to the cell name, creating it if needed, and returns
// the new counter.
func (t *Txn) StateSet(name string, v Value) (uint64, error) {
	return t.stateSet(name, stateValue{v: v})
}

func (t *Txn) stateSet(name string, v stateValue) (uint64, error) {
	r, _, _, err := t.stateAt(name)
	if err != nil {
		return 0, err
	}
	return t.stateWrite(name, r.counter+1, v)
}

// StateCAS writes v to the cell name if its counter is expected, and
// returns the new counter. A missing or deleted cell returns ErrNotFound;
// another counter returns a *ConflictError (ErrConflict). The read is
// validated at commit, so of concurrent CAS with one expectation exactly
// one commits.
func (t *Txn) StateCAS(name string, expected uint64, v Value) (uint64, error) {
	return t.stateCAS(name, expected, stateValue{v: v})
}

func (t *Txn) stateCAS(name string, expected uint64, v stateValue) (uint64, error) {
	r, _, found, err := t.stateAt(name)
	if err != nil {
		return 0, err
	}
	if !found || r.deleted {
		return 0, fmt.Errorf("state cell %q: %w", name, ErrNotFound)
	}
	if r.counter != expected {
		return 0, &ConflictError{Run: t.run, Keys: [][]byte{[]byte(name)}, Primitives: []Primitive{PrimitiveState},
			Reason: fmt.Sprintf("state cell %q has counter %d, expected %d", name, r.counter, expected)}
	}
	return t.stateWrite(name, r.counter+1, v)
}

// StateDelete deletes the cell name and reports whether it existed. The
// cell's counter is kept, so a later init continues from it.
func (t *Txn) StateDelete(name string) (bool, error) {
	r, _, found, err := t.stateAt(name)
	if err != nil || !found || r.deleted {
		return false, err
	}
	rec := appendStateRecord(nil, stateRecord{deleted: true, counter: r.counter})
	return true, t.write(keyenc.TagState, []byte(name), txnWrite{kind: keyenc.KindBytes, payload: rec}, false)
}

// StateList returns, in order, the names of the live cells that start with
// prefix. The range is validated at commit like List's.
func (t *Txn) StateList(prefix string) ([]string, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := checkStatePrefix(t.run, prefix); err != nil {
		return nil, err
	}
	var bad error
	keys, err := t.list(keyenc.TagState, []byte(prefix), func(key []byte, rec mvcc.Record) bool {
		r, err := decodeState(rec)
		if err != nil && bad == nil {
			bad = fmt.Errorf("state cell %q: %w", key, err)
		}
		return err == nil && !r.deleted
	})
	if err == nil && bad != nil {
		err = t.failRead(bad)
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = string(k)
	}
	return names, nil
}

func (t *Txn) stateWrite(name string, counter uint64, v stateValue) (uint64, error) {
	enc, err := v.encoded()
	if err != nil {
		return 0, err
	}
	rec := appendStateRecord(make([]byte, 0, stateHeaderLen+len(enc)), stateRecord{counter: counter, value: enc})
	if err := t.write(keyenc.TagState, []byte(name), txnWrite{kind: keyenc.KindBytes, payload: rec}, false); err != nil {
		return 0, err
	}
	return counter, nil
}

// stateRetry is how the direct state operations retry conflicts: short
// delays, since the competing commits are in this process.
var stateRetry = WithRetry(RetryConfig{MaxRetries: 200, BaseDelay: 20 * time.Microsecond, MaxDelay: 5 * time.Millisecond})

// StateInit creates the cell name in run with value v and returns its
// counter, or ErrStateExists. Of concurrent inits exactly one succeeds; the
// others return ErrStateExists.
func (db *Database) StateInit(ctx context.Context, run RunID, name string, v Value) (uint64, error) {
	sv, err := checkStateWrite(run, name, v)
	if err != nil {
		return 0, err
	}
	var c uint64
	err = db.Transaction(ctx, run, func(t *Txn) (err error) {
		c, err = t.stateInit(name, sv)
		return err
	}, stateRetry, directOp)
	return noResultOnError(c, err)
}

// StateRead returns the cell name at the current visible version, or
// ErrNotFound. It reads in a read transaction, whose snapshot a concurrent
// GC pass leaves alone.
func (db *Database) StateRead(ctx context.Context, run RunID, name string) (State, error) {
	if err := checkStateName(run, name); err != nil {
		return State{}, err
	}
	var s State
	err := db.readTxn(ctx, run, func(t *Txn) (err error) {
		s, err = t.StateRead(name)
		return err
	})
	return noResultOnError(s, err)
}

// StateSet writes v to the cell name, creating it if needed, and returns
// the new counter.
func (db *Database) StateSet(ctx context.Context, run RunID, name string, v Value) (uint64, error) {
	sv, err := checkStateWrite(run, name, v)
	if err != nil {
		return 0, err
	}
	var c uint64
	err = db.Transaction(ctx, run, func(t *Txn) (err error) {
		c, err = t.stateSet(name, sv)
		return err
	}, stateRetry, directOp)
	return noResultOnError(c, err)
}

// StateCAS writes v to the cell name if its counter is expected, and
// returns the new counter. A mismatch returns a *ConflictError (ErrConflict)
// and is not retried; a missing or deleted cell returns ErrNotFound. Of
// concurrent CAS with the same expectation exactly one succeeds. A CAS that
// read the expected counter but lost to a concurrent commit (another CAS, a
// set, or a delete) returns a *ConflictError too.
func (db *Database) StateCAS(ctx context.Context, run RunID, name string, expected uint64, v Value) (uint64, error) {
	sv, err := checkStateWrite(run, name, v)
	if err != nil {
		return 0, err
	}
	var c uint64
	err = db.readTxn(ctx, run, func(t *Txn) (err error) {
		c, err = t.stateCAS(name, expected, sv)
		return err
	})
	return noResultOnError(c, err)
}

// StateDelete deletes the cell name and reports whether it existed.
func (db *Database) StateDelete(ctx context.Context, run RunID, name string) (bool, error) {
	if err := checkStateName(run, name); err != nil {
		return false, err
	}
	var existed bool
	err := db.Transaction(ctx, run, func(t *Txn) (err error) {
		existed, err = t.StateDelete(name)
		return err
	}, stateRetry, directOp)
	return noResultOnError(existed, err)
}

// StateTransition reads the cell name, computes its next value with fn and
// writes it, atomically; on a conflict it starts again with the new value,
// up to 200 times with a short backoff (out of attempts, the last
// *ConflictError is returned; if ctx ends during a backoff, the errors.Join
// of that conflict and ctx's error).
// fn may therefore run several times and must be pure: no side effects, the
// same result for the same state. An error from fn aborts and is returned
// as it is, never retried (even one that matches ErrConflict).
// A missing cell returns ErrNotFound. It returns the state written, as
// StateRead would read it (the stored encoding, so a -0 from fn is +0).
func (db *Database) StateTransition(ctx context.Context, run RunID, name string, fn func(State) (Value, error)) (State, error) {
	if err := checkStateName(run, name); err != nil {
		return State{}, err
	}
	if fn == nil {
		return State{}, fmt.Errorf("%w: nil transition function", ErrInvalidOptions)
	}
	var out State
	err := db.Transaction(ctx, run, func(t *Txn) error {
		cur, err := t.StateRead(name)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return fnError{err} // never retried, even if it matches ErrConflict
		}
		if _, err := t.StateCAS(name, cur.Counter, next); err != nil {
			return err
		}
		// Read the cell back from the write set: the caller gets the value
		// as stored (canonical, -0 as +0) and in memory of its own, not
		// fn's slices and maps.
		out, err = t.StateRead(name)
		return err
	}, stateRetry, directOp, withCommitHook(func(version uint64, ts int64) {
		out.Version, out.Timestamp = version, time.Unix(0, ts)
	}))
	if fe, ok := err.(fnError); ok {
		return State{}, fe.err
	}
	if err != nil {
		return State{}, err
	}
	return out, nil
}

// fnError carries an error of StateTransition's function out of its
// transaction. It does not unwrap, so that the retry policy, which retries
// whatever matches ErrConflict, never retries it.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// StateList returns the names of the live cells of run that start with
// prefix, in order, at the current visible version.
func (db *Database) StateList(ctx context.Context, run RunID, prefix string) ([]string, error) {
	if err := checkStatePrefix(run, prefix); err != nil {
		return nil, err
	}
	var names []string
	err := db.readTxn(ctx, run, func(t *Txn) (err error) {
		names, err = t.StateList(prefix)
		return err
	})
	return noResultOnError(names, err)
}
