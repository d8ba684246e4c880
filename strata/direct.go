package strata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/value"
)

// Value is a structured value: null, bool, int, float, string, bytes, array
// or object. Build one with the constructors of package value
// (value.String("x"), value.Bytes(b), ...). A Bytes value is stored as is,
// with no encoding; the other kinds use value's canonical encoding.
type Value = value.Value

// Versioned is a value with the version that wrote it and the commit time.
type Versioned struct {
	Value     Value
	Version   uint64
	Timestamp time.Time
}

// checkKey validates a run id and a user key.
func checkKey(run RunID, key []byte) error {
	if err := run.Validate(); err != nil {
		return err
	}
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes exceeds the maximum of %d", ErrInvalidKey, len(key), MaxKeySize)
	}
	return nil
}

// encodeValue returns the stored kind and payload of v. Bytes pass through
// without a copy.
func encodeValue(v Value) (keyenc.Kind, []byte, error) {
	if b, ok := v.AsBytes(); ok {
		return checkedPayload(keyenc.KindBytes, b)
	}
	payload, err := value.AppendLimit(nil, v, MaxValueSize)
	if err != nil {
		return 0, nil, err
	}
	return keyenc.KindValue, payload, nil
}

// checkedPayload returns kind and payload if the payload is within
// MaxValueSize.
func checkedPayload(kind keyenc.Kind, payload []byte) (keyenc.Kind, []byte, error) {
	if len(payload) > MaxValueSize {
		return 0, nil, fmt.Errorf("%w: value of %d bytes exceeds the maximum of %d", ErrInvalidValue, len(payload), MaxValueSize)
	}
	return kind, payload, nil
}

// commitTime is the commit time of a record: the zero time for a
// transaction's own, uncommitted write (Version 0).
func commitTime(rec mvcc.Record) time.Time {
	if rec.Version == 0 {
		return time.Time{}
	}
	return time.Unix(0, rec.Timestamp)
}

// decodeRecord turns a stored record into a Versioned value.
func decodeRecord(rec mvcc.Record) (Versioned, error) {
	out := Versioned{Version: rec.Version, Timestamp: commitTime(rec)}
	switch rec.Kind {
	case keyenc.KindBytes:
		out.Value = value.Bytes(rec.Payload)
	case keyenc.KindValue:
		v, err := value.Decode(rec.Payload)
		if err != nil {
			return Versioned{}, err
		}
		out.Value = v
	default:
		return Versioned{}, fmt.Errorf("%w: unexpected record kind %d", ErrCorruption, rec.Kind)
	}
	return out, nil
}

// Put writes v under key in run as a single-key commit and returns its
// version. It is a blind write: it never conflicts.
func (db *Database) Put(ctx context.Context, run RunID, key []byte, v Value) (uint64, error) {
	return db.put(ctx, run, key, v, nil)
}

// put commits v under key in run, after check (if any) accepts the commit
// under the run's commit lock.
func (db *Database) put(ctx context.Context, run RunID, key []byte, v Value, check func(uint64) error) (uint64, error) {
	if err := checkKey(run, key); err != nil {
		return 0, err
	}
	kind, payload, err := encodeValue(v)
	if err != nil {
		return 0, err
	}
	if err := db.enter(ctx); err != nil {
		return 0, err
	}
	defer db.leave()
	w := []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: key, Kind: kind, Payload: payload}}
	res, err := db.commit(ctx, run, w, check, db.dur.Mode())
	return res.version, err
}

// Get returns the newest committed value of key in run, read at the current
// visible version. An absent or deleted key returns ErrNotFound.
func (db *Database) Get(ctx context.Context, run RunID, key []byte) (Versioned, error) {
	if err := checkKey(run, key); err != nil {
		return Versioned{}, err
	}
	if err := db.enter(ctx); err != nil {
		return Versioned{}, err
	}
	defer db.leave()
	rec, found, err := db.getVisible(run, keyenc.TagKV, key)
	switch {
	case err != nil:
		return Versioned{}, err
	case !found || rec.Deleted():
		return Versioned{}, ErrNotFound
	}
	return decodeRecord(rec)
}

// getVisible reads (tag, key) of run at the visible version (see
// atVisible).
func (db *Database) getVisible(run RunID, tag keyenc.Tag, key []byte) (rec mvcc.Record, found bool, err error) {
	err = db.atVisible(run, func(at uint64) (err error) {
		rec, found, err = db.store.Get(keyenc.RunID(run), tag, key, at)
		return err
	})
	return rec, found, err
}

// Delete removes key from run as a single-key commit. It reports whether the
// key existed; deleting an absent key writes nothing.
func (db *Database) Delete(ctx context.Context, run RunID, key []byte) (bool, error) {
	if err := checkKey(run, key); err != nil {
		return false, err
	}
	if err := db.enter(ctx); err != nil {
		return false, err
	}
	defer db.leave()
	w := []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: key, Kind: keyenc.KindTombstone}}
	_, err := db.commit(ctx, run, w, func(uint64) error {
		if v, err := db.latestVersion(run, keyenc.TagKV, key); err != nil {
			return err
		} else if v == 0 {
			return errKeyAbsent
		}
		return nil
	}, db.dur.Mode())
	switch {
	case err == errKeyAbsent:
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// errKeyAbsent refuses a Delete's commit: the key has no live version.
var errKeyAbsent = errors.New("strata: key absent")

// CAS writes v under key only if the key's current version equals expected
// (0 means the key must be absent or deleted), and returns the new version.
// A mismatch returns a *ConflictError matching ErrConflict and writes
// nothing. Of several concurrent CAS with the same expectation, exactly one
// succeeds.
func (db *Database) CAS(ctx context.Context, run RunID, key []byte, expected uint64, v Value) (uint64, error) {
	return db.put(ctx, run, key, v, func(uint64) error {
		cur, err := db.latestVersion(run, keyenc.TagKV, key)
		if err != nil {
			return err
		}
		if cur != expected {
			return &ConflictError{Run: run, Keys: [][]byte{append([]byte(nil), key...)},
				Reason: fmt.Sprintf("compare-and-swap expected version %d, found %d", expected, cur)}
		}
		return nil
	})
}

// latestVersion returns the newest committed version of (tag, key), 0 if it
// is absent or deleted. It reads past the visible version: called under the
// run's commit lock, it sees every commit of the run that has been applied,
// including those still waiting to become visible.
func (db *Database) latestVersion(run RunID, tag keyenc.Tag, key []byte) (uint64, error) {
	rec, found, err := db.store.StatLatest(keyenc.RunID(run), tag, key)
	if err != nil || !found || rec.Deleted() {
		return 0, err
	}
	return rec.Version, nil
}
