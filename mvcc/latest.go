package mvcc

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// latestIndex remembers, for recently used keys, the version of their newest
// record (0: no record), so that a point read at a snapshot that covers it
// is one exact Pebble Get instead of a seek through a merging iterator.
//
// # Why it is never stale
//
// An entry for a key changes only in two ways:
//
//   - A commit that writes the key first marks the entry in flight (a version
//     above every snapshot, so reads take the slow way) before its batch is
//     applied, and sets it to its version once the batch is applied, unless
//     a newer version is already recorded. So while a version newer than the
//     entry's can be visible, the entry is in flight. Both steps run outside
//     the sequencing lock.
//   - A read that found the newest version V at or below its snapshot S adds
//     the entry only if there is none, and only if S is at or above the
//     version recovered on open. Then V covers every recovered version, and
//     any newer version was written after the index began, by a commit that
//     created the entry before applying; so an absent entry means V is the
//     newest. (A time-travel read below the recovered version teaches
//     nothing: a newer recovered version may exist.)
//
// Entries are never evicted: once the index holds maxEntries keys, nobody
// adds new keys (a commit that cannot add its key leaves it absent, and an
// absent key is always read the slow way). Commits still update the keys
// that are present.
//
// So if the entry for a key says V and a snapshot S >= V, the newest version
// at or below S is exactly V. Anything that later removes or rewrites records
// outside Store.Apply (version GC, deleting a run) must drop the entries of
// the keys it touches.
type latestIndex struct {
	seed   maphash.Seed
	shards [16]latestShard
	size   atomic.Int64
	max    int64
}

type latestShard struct {
	mu sync.Mutex
	// Values are pointers so that updating a known key needs no string
	// conversion of the key (an allocation per update).
	m map[string]*uint64
}

func newLatestIndex(maxEntries int64) *latestIndex {
	x := &latestIndex{seed: maphash.MakeSeed(), max: maxEntries}
	for i := range x.shards {
		x.shards[i].m = map[string]*uint64{}
	}
	return x
}

func (x *latestIndex) shard(prefix []byte) *latestShard {
	return &x.shards[maphash.Bytes(x.seed, prefix)%uint64(len(x.shards))]
}

// get returns the newest version recorded for prefix (a key's bare key).
func (x *latestIndex) get(prefix []byte) (uint64, bool) {
	s := x.shard(prefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.m[string(prefix)]; p != nil {
		return *p, true
	}
	return 0, false
}

// inFlight marks an entry whose key a commit is applying.
const inFlight = ^uint64(0)

// writing marks prefix in flight before a commit applies a version of it,
// and reports whether the index tracks it (then applied must follow).
func (x *latestIndex) writing(prefix []byte) bool {
	s := x.shard(prefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.m[string(prefix)]; p != nil {
		*p = inFlight
		return true
	}
	if x.size.Load() >= x.max {
		return false
	}
	x.size.Add(1)
	v := inFlight
	s.m[string(prefix)] = &v
	return true
}

// applied records that version v of prefix was applied. An entry that is
// in flight takes v; one that already holds a newer version keeps it.
func (x *latestIndex) applied(prefix []byte, v uint64) {
	s := x.shard(prefix)
	s.mu.Lock()
	if p := s.m[string(prefix)]; p != nil && (*p == inFlight || *p < v) {
		*p = v
	}
	s.mu.Unlock()
}

// read records that v is the newest version of prefix at or below a
// snapshot, if nothing is recorded for it yet.
func (x *latestIndex) read(prefix []byte, v uint64) {
	s := x.shard(prefix)
	s.mu.Lock()
	if s.m[string(prefix)] == nil && x.size.Load() < x.max {
		x.size.Add(1)
		s.m[string(prefix)] = &v
	}
	s.mu.Unlock()
}
