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
//   - A commit that writes the key sets the entry to its version before its
//     batch is applied (Store.Apply, under the sequencing lock), so no version
//     newer than the entry can be applied, let alone visible.
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
	m  map[string]uint64
}

func newLatestIndex(maxEntries int64) *latestIndex {
	x := &latestIndex{seed: maphash.MakeSeed(), max: maxEntries}
	for i := range x.shards {
		x.shards[i].m = map[string]uint64{}
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
	v, ok := s.m[string(prefix)]
	s.mu.Unlock()
	return v, ok
}

// wrote records that version v of prefix is about to be applied.
func (x *latestIndex) wrote(prefix []byte, v uint64) {
	s := x.shard(prefix)
	s.mu.Lock()
	if _, ok := s.m[string(prefix)]; ok {
		s.m[string(prefix)] = v
	} else if x.size.Load() < x.max {
		x.size.Add(1)
		s.m[string(prefix)] = v
	}
	s.mu.Unlock()
}

// read records that v is the newest version of prefix at or below a
// snapshot, if nothing is recorded for it yet.
func (x *latestIndex) read(prefix []byte, v uint64) {
	s := x.shard(prefix)
	s.mu.Lock()
	if _, ok := s.m[string(prefix)]; !ok && x.size.Load() < x.max {
		x.size.Add(1)
		s.m[string(prefix)] = v
	}
	s.mu.Unlock()
}
