package mvcc

import (
	"bytes"
	"iter"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
)

// Entry is one key of a scan: its user key (owned by the caller) and the
// newest record at or below the scan's version. The record's Payload is
// the iterator's: valid only until the loop body returns (copy it to keep
// it), so that a scan that needs keys or versions copies no values.
type Entry struct {
	Key []byte
	Record
}

// Scan yields, in user-key order, every key of (run, tag) whose user key
// starts with prefix, with its newest version at or below version at.
// Deleted keys are skipped. Iteration starts at the first key >= start (nil
// for the beginning of the prefix). An error ends the sequence: the last
// pair carries it, so a scan never passes off a partial result as complete.
// When the error is a record that fails to read or decode, that pair's Key
// is the user key the record is stored under (otherwise it is nil).
func (s *Store) Scan(run keyenc.RunID, tag keyenc.Tag, prefix, start []byte, at uint64) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		lower, upper := keyenc.PrefixBounds(run, tag, prefix)
		it, err := s.db.NewIter(lower, upper)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		stopped := false
		emit := func(e Entry, err error) bool {
			if !yield(e, err) {
				stopped = true
				return false
			}
			return true
		}
		var seekBuf []byte
		valid := it.First()
		if start != nil {
			seekBuf = keyenc.AppendVersioned(seekBuf[:0], run, tag, start, at)
			valid = it.SeekGE(seekBuf)
		}
		for valid {
			k := it.Key()
			if keyenc.Version(k) > at {
				// Newer than the snapshot: jump to this key's newest
				// version <= at, which may be in the next prefix.
				d, err := keyenc.DecodeDataKey(k)
				if err != nil {
					emit(Entry{}, err)
					break
				}
				seekBuf = keyenc.AppendVersioned(seekBuf[:0], run, tag, d.UserKey, at)
				if !it.SeekGE(seekBuf) {
					break
				}
				if n := keyenc.Split(seekBuf); !bytes.Equal(it.Key()[:keyenc.Split(it.Key())], seekBuf[:n]) {
					continue // the key has no version <= at; look at the next key
				}
				k = it.Key()
			}
			d, err := keyenc.DecodeDataKey(k)
			if err != nil {
				emit(Entry{}, err)
				break
			}
			rec, err := aliasRecord(it, keyenc.Version(k))
			if err != nil {
				// The key decoded: say which one the bad record is under.
				emit(Entry{Key: append([]byte(nil), d.UserKey...)}, err)
				break
			}
			if !rec.Deleted() {
				if !emit(Entry{Key: append([]byte(nil), d.UserKey...), Record: rec}, nil) {
					break
				}
			}
			valid = it.NextPrefix()
		}
		if err := closeIter(it); err != nil && !stopped {
			yield(Entry{}, err)
		}
	}
}

// History yields the versions of (run, tag, key), newest first, starting at
// the newest version at or below at. Tombstones are included.
func (s *Store) History(run keyenc.RunID, tag keyenc.Tag, key []byte, at uint64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		it, err := s.db.NewIter(nil, nil)
		if err != nil {
			yield(Record{}, err)
			return
		}
		stopped := false
		// In prefix mode the iterator never leaves the key's prefix.
		for valid := it.SeekPrefixGE(keyenc.AppendVersioned(nil, run, tag, key, at)); valid; valid = it.Next() {
			rec, err := decodeRecord(it)
			if !yield(rec, err) || err != nil {
				stopped = true
				break
			}
		}
		if err := closeIter(it); err != nil && !stopped {
			yield(Record{}, err)
		}
	}
}

func closeIter(it *pebbleadapter.Iter) error {
	err := it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return err
}
