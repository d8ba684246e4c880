package strata

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/value"
)

// The direct reads of the KV primitive beyond Get: existence, paginated
// listing, multi-key reads at one snapshot, time travel and per-key history.
// Like Get, none of them takes a lock or conflicts with anything.

// ErrFutureVersion is returned by a read at an explicit version (GetAt) that
// is above the visible version: that version has not committed yet, or is
// not visible to reads yet. Match it with errors.Is.
var ErrFutureVersion = errors.New("strata: version is not visible yet")

// DefaultListLimit is the page size of List when ListOptions.Limit is 0.
const DefaultListLimit = 1000

// ListOptions tunes one List call.
type ListOptions struct {
	// Cursor resumes a listing: pass the Next of the previous page (with the
	// same prefix). It is opaque; a cursor of another prefix is rejected
	// with ErrInvalidKey. The default (nil) starts at the first key of the
	// prefix.
	Cursor []byte
	// Limit is the largest number of keys in the page. A negative limit is
	// rejected with ErrInvalidOptions. The default (0) is DefaultListLimit.
	Limit int
}

// ListPage is one page of a List.
type ListPage struct {
	// Keys are the page's keys in ascending byte order, owned by the caller.
	Keys [][]byte
	// Next is the cursor of the following page, nil when there are no more
	// keys.
	Next []byte
	// Version is the snapshot the page was read at: the visible version when
	// List was called.
	Version uint64
}

// HistoryOptions tunes one History call.
type HistoryOptions struct {
	// Limit is the largest number of entries returned, newest first. A
	// negative limit is rejected with ErrInvalidOptions. The default (0)
	// returns every version.
	Limit int
	// Before, if not 0, returns only versions strictly below it: pass the
	// Version of the oldest entry of one call to continue with the next.
	// The default (0) starts at the visible version.
	Before uint64
}

// HistoryEntry is one version of a key. A deletion is an entry with Deleted
// set, a null Value, and the version and time of the delete.
type HistoryEntry struct {
	Versioned
	Deleted bool
}

// Exists reports whether key has a committed value in run at the visible
// version. A deleted key does not exist.
func (db *Database) Exists(ctx context.Context, run RunID, key []byte) (bool, error) {
	if err := checkKey(run, key); err != nil {
		return false, err
	}
	if err := db.enter(ctx); err != nil {
		return false, err
	}
	defer db.leave()
	var found bool
	err := db.atVisible(run, func(at uint64) error {
		rec, ok, err := db.store.Stat(keyenc.RunID(run), keyenc.TagKV, key, at) // no value is read out
		found = ok && !rec.Deleted()
		return err
	})
	return noResultOnError(found, err)
}

// atVisible runs read at the visible version, and again at the then visible
// version if version GC may have removed a version the read needed (the
// visible version is never below the GC horizon once GC has published it).
func (db *Database) atVisible(run RunID, read func(at uint64) error) error {
	for {
		at := db.store.Visible()
		if err := read(at); err != nil {
			return err
		}
		if trimmed, err := db.trimmed(run, at); err != nil || !trimmed {
			return err
		}
	}
}

// checkPrefix rejects a list prefix no key can start with: one longer than
// MaxKeySize.
func checkPrefix(prefix []byte) error {
	if len(prefix) > MaxKeySize {
		return fmt.Errorf("%w: prefix of %d bytes exceeds the maximum key size of %d", ErrInvalidKey, len(prefix), MaxKeySize)
	}
	return nil
}

// List returns one page of the keys of run that start with prefix, in
// ascending byte order, read at the visible version; deleted keys are
// skipped. An empty prefix lists every key of run (and only of run).
//
// Each page is consistent in itself: it is read at one snapshot, reported in
// ListPage.Version. Successive pages are read at separate snapshots (each at
// the version visible when it is requested), so a key written or deleted
// between two calls may or may not appear in the later pages. A key that
// exists and is left alone during the whole listing appears exactly once.
// A page resumes by seeking right after its cursor: the cost of a page does
// not depend on how many pages came before it.
func (db *Database) List(ctx context.Context, run RunID, prefix []byte, opts ListOptions) (ListPage, error) {
	if err := run.Validate(); err != nil {
		return ListPage{}, err
	}
	if err := checkPrefix(prefix); err != nil {
		return ListPage{}, err
	}
	limit := opts.Limit
	switch {
	case limit < 0:
		return ListPage{}, fmt.Errorf("%w: negative list limit %d", ErrInvalidOptions, limit)
	case limit == 0:
		limit = DefaultListLimit
	}
	var start []byte
	if len(opts.Cursor) > 0 {
		if err := checkKey(run, opts.Cursor); err != nil {
			return ListPage{}, fmt.Errorf("list cursor: %w", err)
		}
		if !bytes.HasPrefix(opts.Cursor, prefix) {
			return ListPage{}, fmt.Errorf("%w: list cursor %q is not under prefix %q", ErrInvalidKey, opts.Cursor, prefix)
		}
		// The cursor is the last key returned; the smallest key after it is
		// the cursor with a 0x00 byte appended.
		start = keyAfter(opts.Cursor)
	}
	if err := db.enter(ctx); err != nil {
		return ListPage{}, err
	}
	defer db.leave()

	var page ListPage
	err := db.atVisible(run, func(at uint64) error {
		page = ListPage{Version: at}
		// Read one key past the limit to learn whether another page follows.
		for e, err := range db.store.Scan(keyenc.RunID(run), keyenc.TagKV, prefix, start, at) {
			if err != nil {
				return err
			}
			if len(page.Keys) == limit {
				page.Next = bytes.Clone(page.Keys[limit-1])
				break
			}
			if err := ctxErr(ctx); err != nil {
				return err
			}
			page.Keys = append(page.Keys, e.Key) // Scan hands over its copy
		}
		// The scan steps over deleted keys without a look at the deadline:
		// nothing succeeds after it.
		return ctxErr(ctx)
	})
	if err != nil {
		return ListPage{}, err
	}
	return page, nil
}

// keyAfter returns the smallest key greater than k.
func keyAfter(k []byte) []byte {
	out := make([]byte, len(k)+1)
	copy(out, k)
	return out
}

// GetMany reads keys of run at one snapshot, the visible version when it is
// called: no commit is seen by one key and missed by another. The result has
// one entry per key, in the order of keys (duplicates included). An absent
// or deleted key gives the zero Versioned, recognisable by its Version 0:
// committed versions start at 1.
func (db *Database) GetMany(ctx context.Context, run RunID, keys [][]byte) ([]Versioned, error) {
	for _, k := range keys {
		if err := checkKey(run, k); err != nil {
			return nil, err
		}
	}
	if err := db.enter(ctx); err != nil {
		return nil, err
	}
	defer db.leave()
	out := make([]Versioned, len(keys))
	err := db.atVisible(run, func(at uint64) error {
		for i, k := range keys {
			if err := ctxErr(ctx); err != nil {
				return err
			}
			v, _, err := db.readKV(run, k, at)
			if err != nil {
				return err
			}
			out[i] = v
		}
		return ctxErr(ctx) // nothing succeeds after the deadline
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetAt returns the value key had in run at commit version version: the
// newest committed version at or below it. A key absent or deleted at that
// version returns ErrNotFound, and so does version 0 (nothing exists before
// the first commit). A version above CurrentVersion returns an error
// matching ErrFutureVersion.
func (db *Database) GetAt(ctx context.Context, run RunID, key []byte, version uint64) (Versioned, error) {
	if err := checkKey(run, key); err != nil {
		return Versioned{}, err
	}
	if err := db.enter(ctx); err != nil {
		return Versioned{}, err
	}
	defer db.leave()
	if version == 0 {
		return Versioned{}, ErrNotFound
	}
	if err := db.checkReadVersion(run, version); err != nil {
		return Versioned{}, err
	}
	v, found, err := db.readKV(run, key, version)
	if err == nil {
		err = db.checkReadVersion(run, version) // GC may have run meanwhile
	}
	switch {
	case err != nil:
		return Versioned{}, err
	case !found:
		return Versioned{}, ErrNotFound
	}
	return v, nil
}

// History returns the versions of key in run, newest first, starting at the
// visible version (or below opts.Before), deletions included as entries with
// Deleted set. A key never written returns an empty history and no error.
// Versions removed by version GC are not listed. Without Before the history
// is read at the visible version, exactly; with Before it lists the versions
// below Before that are still stored, so paging with Before reaches every
// version the first page's call would have listed, GC horizon or not.
func (db *Database) History(ctx context.Context, run RunID, key []byte, opts HistoryOptions) ([]HistoryEntry, error) {
	if err := checkKey(run, key); err != nil {
		return nil, err
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%w: negative history limit %d", ErrInvalidOptions, opts.Limit)
	}
	if err := db.enter(ctx); err != nil {
		return nil, err
	}
	defer db.leave()
	for {
		// A Before above the visible version is only a bound: it cannot
		// reach past what is visible, and reads like no Before (exactly,
		// at the visible version). Looked at again on every try, since the
		// visible version moves.
		at := db.store.Visible()
		if opts.Before != 0 && opts.Before-1 < at {
			// The page lists what is stored below Before, below the GC
			// horizon too: GC only removes versions, so it lists no version
			// that was not written, and the versions GC removed are missing
			// from it as from any History.
			return db.history(ctx, run, key, opts.Before-1, opts.Limit)
		}
		if err := db.checkReadVersion(run, at); err != nil {
			return nil, err
		}
		out, err := db.history(ctx, run, key, at, opts.Limit)
		if err == nil {
			err = db.checkReadVersion(run, at) // GC may have run meanwhile
		}
		if errors.Is(err, ErrHistoryTrimmed) {
			// GC passed the visible version we started at, and may have
			// removed the version that was newest there: start again.
			continue
		}
		return noResultOnError(out, err)
	}
}

// history reads the stored versions of key at or below at, newest first.
func (db *Database) history(ctx context.Context, run RunID, key []byte, at uint64, limit int) ([]HistoryEntry, error) {
	var out []HistoryEntry
	if at == 0 {
		return out, nil // versions start at 1
	}
	for rec, err := range db.store.History(keyenc.RunID(run), keyenc.TagKV, key, at) {
		if err != nil {
			return nil, err
		}
		if err := ctxErr(ctx); err != nil {
			return nil, err
		}
		var e HistoryEntry
		if rec.Deleted() {
			e = HistoryEntry{Versioned: Versioned{Value: value.Null(), Version: rec.Version, Timestamp: commitTime(rec)}, Deleted: true}
		} else {
			v, err := decodeRecord(rec)
			if err != nil {
				return nil, err
			}
			e = HistoryEntry{Versioned: v}
		}
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err // nothing succeeds after the deadline
	}
	return out, nil
}

// checkReadVersion accepts or refuses a read of run at an explicit version v
// (GetAt, History without Before). Every read below the visible version
// that must be exact goes through it (a History page with Before lists what
// is stored instead), so it is the one place that knows which versions can
// still be read exactly: it
// refuses versions that are not visible yet (ErrFutureVersion) and versions
// below the run's GC horizon (ErrHistoryTrimmed). Call it before the read,
// and again after it: GC may publish a new horizon while the read runs.
func (db *Database) checkReadVersion(run RunID, v uint64) error {
	if cur := db.store.Visible(); v > cur {
		return fmt.Errorf("%w: version %d, current version %d (run %s)", ErrFutureVersion, v, cur, run)
	}
	h, err := db.gcHorizon(run)
	if err != nil {
		return err
	}
	if v < h {
		return trimmedError(run, v, h)
	}
	return nil
}

// readKV reads the newest value of a KV key at or below version at. found
// is false, with the zero Versioned, when the key is absent or deleted then.
func (db *Database) readKV(run RunID, key []byte, at uint64) (v Versioned, found bool, err error) {
	rec, found, err := db.store.Get(keyenc.RunID(run), keyenc.TagKV, key, at)
	if err != nil || !found || rec.Deleted() {
		return Versioned{}, false, err
	}
	v, err = decodeRecord(rec)
	if err != nil {
		return Versioned{}, false, err
	}
	return v, true, nil
}
