package pebbleadapter

import (
	"github.com/cockroachdb/pebble/v2"
)

// Iter is a Pebble iterator over [lower, upper). Key and Value are valid only
// until the next positioning call; copy what you keep. Close must be called.
type Iter struct {
	d  *DB
	it *pebble.Iterator
}

// NewIter returns an iterator over [lower, upper). Both bounds must be valid
// keys built by keyenc, or nil for unbounded.
func (d *DB) NewIter(lower, upper []byte) (*Iter, error) {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, d.mapError(err)
	}
	return &Iter{d: d, it: it}, nil
}

// pointReadOptions are the options of NewPointIter. UseL6Filters lets a
// prefix seek skip the bottom level through its bloom filter when the key
// lives higher up, as Pebble's own Get does by stopping at the first level
// that holds the key.
var pointReadOptions = pebble.IterOptions{UseL6Filters: true}

// NewPointIter returns an unbounded iterator tuned for a single
// SeekPrefixGE: one point read.
func (d *DB) NewPointIter() (*Iter, error) {
	it, err := d.pdb.NewIter(&pointReadOptions)
	if err != nil {
		return nil, d.mapError(err)
	}
	return &Iter{d: d, it: it}, nil
}

// SeekPrefixGE positions at the first key >= key that shares key's Split
// prefix; it uses bloom filters. It reports whether such a key exists.
func (i *Iter) SeekPrefixGE(key []byte) bool { return i.it.SeekPrefixGE(key) }

// SeekGE positions at the first key >= key.
func (i *Iter) SeekGE(key []byte) bool { return i.it.SeekGE(key) }

// First positions at the first key.
func (i *Iter) First() bool { return i.it.First() }

// Next moves to the next key.
func (i *Iter) Next() bool { return i.it.Next() }

// NextPrefix moves to the first key with a different Split prefix, skipping
// the older versions of the current one.
func (i *Iter) NextPrefix() bool { return i.it.NextPrefix() }

// Valid reports whether the iterator is positioned at a key.
func (i *Iter) Valid() bool { return i.it.Valid() }

// Key returns the current key.
func (i *Iter) Key() []byte { return i.it.Key() }

// Value returns the current value, or an error if it cannot be read.
func (i *Iter) Value() ([]byte, error) {
	v, err := i.it.ValueAndErr()
	return v, i.d.mapError(err)
}

// Error returns the iterator's accumulated error, mapped to Strata's
// sentinels (corruption matches ErrCorruption).
func (i *Iter) Error() error { return i.d.mapError(i.it.Error()) }

// Close releases the iterator and returns its error.
func (i *Iter) Close() error { return i.d.mapError(i.it.Close()) }
