package pebbleadapter

import (
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Iter is a Pebble iterator over [lower, upper). Key and Value are valid only
// until the next positioning call; copy what you keep. Close must be called.
type Iter struct {
	d  *DB
	it *pebble.Iterator

	// For cached point-read iterators (AcquirePointIter): every write with a
	// version <= covered was applied before the iterator was created, and
	// born is when that was.
	covered uint64
	born    time.Time
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

// maxPointIterAge bounds how long a cached point-read iterator is reused. An
// iterator pins the memtables and sstables it was created over; reusing it
// for a short while saves building a merging iterator per read. An
// iterator left in the cache is closed about maxPointIterAge after it
// expires even if no read comes (see sweepPointIters), so that an idle
// database does not keep obsolete files, their descriptors and old
// memtables alive.
const maxPointIterAge = 50 * time.Millisecond

// AcquirePointIter returns an unbounded iterator for point reads
// (SeekPrefixGE) whose view holds every write with a version <= need.
//
// Pebble iterators are point-in-time views, so a cached iterator can serve a
// read only if it was created after every write the read must see. The
// caller passes applied, which reports the highest version whose write has
// been applied; an iterator created right after reading it covers that
// version. A cached iterator is reused while it covers need and is younger
// than maxPointIterAge. Return it with ReleasePointIter.
func (d *DB) AcquirePointIter(need uint64, applied func() uint64) (*Iter, error) {
	select {
	case it := <-d.pointIters:
		if it.covered >= need && time.Since(it.born) < maxPointIterAge {
			return it, nil
		}
		_ = it.it.Close()
	default:
	}
	covered := applied() // read before the view is taken
	pit, err := d.pdb.NewIter(&pointReadOptions)
	if err != nil {
		return nil, d.mapError(err)
	}
	return &Iter{d: d, it: pit, covered: covered, born: time.Now()}, nil
}

// ReleasePointIter returns an iterator from AcquirePointIter to the cache,
// or closes it if it saw an error or the cache is full.
func (d *DB) ReleasePointIter(it *Iter) error {
	if err := it.Error(); err != nil {
		_ = it.it.Close()
		return err
	}
	select {
	case d.pointIters <- it:
		d.scheduleIterSweep()
		return nil
	default:
		return it.Close()
	}
}

// scheduleIterSweep makes sure a sweep of the cached point-read iterators
// runs within two maxPointIterAge.
func (d *DB) scheduleIterSweep() {
	if d.iterSweep.CompareAndSwap(false, true) {
		time.AfterFunc(2*maxPointIterAge, d.sweepPointIters)
	}
}

// sweepPointIters closes the cached point-read iterators older than
// maxPointIterAge and schedules another sweep if younger ones remain. It
// runs through the gate, so Close waits for it, and after Close began it
// does nothing (Close closes the cached iterators itself).
func (d *DB) sweepPointIters() {
	d.iterSweep.Store(false)
	if d.Enter() != nil {
		return
	}
	defer d.Leave()
	var young []*Iter
	for range len(d.pointIters) {
		select {
		case it := <-d.pointIters:
			if time.Since(it.born) < maxPointIterAge {
				young = append(young, it)
			} else {
				_ = it.it.Close()
			}
		default:
		}
	}
	for _, it := range young {
		select {
		case d.pointIters <- it:
		default:
			_ = it.it.Close()
		}
	}
	if len(young) > 0 {
		d.scheduleIterSweep()
	}
}

// closePointIters closes every cached point-read iterator; Close calls it
// after the last operation left and before Pebble closes.
func (d *DB) closePointIters() {
	for {
		select {
		case it := <-d.pointIters:
			_ = it.it.Close()
		default:
			return
		}
	}
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
