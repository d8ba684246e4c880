package mvcc

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/strata-db/strata/keyenc"
)

// latestIndex remembers, for recently used keys, the version of their newest
// record (0: no record), so that a point read at a snapshot that covers it
// is one exact Pebble Get instead of a seek through a merging iterator; and,
// for small records and within a byte budget, the record itself, so that the
// read needs no Pebble access at all (a row cache of newest versions).
//
// # Which keys it tracks
//
// A commit tracks a key it writes if the index already holds it, or if the
// key was written recently (a small filter of hashes per shard remembers
// the keys written without being tracked): a key written once, like a fresh
// key of a bulk load or an event-like append, costs a hash, a look at the
// shard's membership filter (which spares the map lookup for most keys the
// shard does not hold) and at its filter of recent writes, and no
// allocation; a key written again, like a run's event log head or a
// state cell, gets in. A read that finds a key the index does not hold
// teaches it (see below), so a key read after its first write gets in too.
// A shard that reaches its share of maxEntries, or of the entries' key
// bytes (keyBytesPerEntry per entry on average), evicts its oldest entries
// that are not in flight to admit a new one (if it has none, it grows past
// its share until in-flight entries settle): long keys make the index hold
// fewer of them, not more memory. Event keys are not tracked at all
// (see tracked): they are written once and read in ranges, so they would
// only push out the keys that are read again.
//
// # Why it is never stale
//
// The argument assumes what Store.Apply requires: two commits that write the
// same key do not overlap, and a commit writes a key once. (If they
// overlapped, a tracked writer could record its version after an untracked
// one recorded a newer one, and the entry would stay behind.)
//
// An entry for a key changes only in these ways:
//
//   - A commit that writes a tracked key first marks the entry in flight (a
//     version above every snapshot, so reads take the slow way) before its
//     batch is applied, and sets it to its version once the batch is
//     applied, unless a newer version is already recorded. So while a
//     version newer than the entry's can be visible, the entry is in flight.
//     Both steps run outside the sequencing lock.
//   - A commit that writes a key without tracking it counts itself in flight
//     in the key's shard until its batch is applied, then raises the shard's
//     untracked mark to its version.
//   - A commit refused before it got a version (its context ended while it
//     waited to be sequenced) applied nothing: an untracked write stops
//     counting in flight, and a tracked entry it put in flight is dropped,
//     as eviction drops one (the floor raised first).
//   - A read that found the newest version V at or below its snapshot S adds
//     an entry only if there is none, the shard has room, no untracked write
//     is in flight in the shard, S is at or above the shard's untracked mark,
//     and S is at or above the floor. The floor starts at the version
//     recovered on open and is raised, before an entry is evicted, to the
//     highest applied version. So any version newer than S was written by a
//     commit after the index began (or after the last eviction), and that
//     commit either created the entry before applying (it is in flight or
//     newer, and the read adds nothing) or did not track the key, and then
//     it is in flight or below the untracked mark. An absent entry therefore
//     means V is the newest. (A time-travel read below the floor teaches
//     nothing: a newer version may exist.)
//
// So if the entry for a key says V and a snapshot S >= V, the newest version
// at or below S is exactly V. A cached record is always the record of the
// entry's version: it is dropped when the entry goes in flight and set only
// together with the version. Anything that later removes or rewrites records
// outside Store.Apply (version GC, deleting a run) must drop the entries of
// the keys it touches.
type latestIndex struct {
	seed   maphash.Seed
	shards [16]latestShard
	// shardEntries and shardKeyBytes are each shard's share of the index's
	// entries and of the sum of their keys' lengths.
	shardEntries, shardKeyBytes int64
	// cached is the sum of the cached records' capacities; records are
	// cached only while it stays below maxCached.
	cached    atomic.Int64
	maxCached int64
	// floor: only reads at or above it may add entries (see above).
	floor atomic.Uint64
	// appliedVersion reports the highest applied version.
	appliedVersion func() uint64
}

type latestShard struct {
	mu sync.Mutex
	// Values are pointers so that updating a known key needs no string
	// conversion of the key (an allocation per update).
	m map[string]*latestEntry
	// keyBytes is the sum of the lengths of m's keys.
	keyBytes int64
	// fifo holds the shard's keys in insertion order from index head on:
	// eviction takes the oldest (first in, first out). Every key of m has
	// a slot there; a key removed other than by eviction (abandoned, or
	// dropped by version GC) leaves its slot behind, and a key added again
	// gets another, until add compacts fifo (see add).
	fifo []string
	head int
	// door remembers keys a commit wrote without tracking them, as two
	// hash bits each (a Bloom filter); a second write of such a key is
	// admitted. It is cleared after doorKeysMax keys, so it remembers recent
	// writes, and at most an eighth of its bits are set: a fresh key is
	// admitted by mistake less than 2 % of the time.
	door     [doorBits / 64]uint64
	doorKeys int
	// member is a Bloom filter of m's keys, so that a write or read of a key
	// the shard does not hold (most writes of fresh keys) usually skips the
	// map lookup, a cache miss once the map is large. Every key in m has its
	// bits set; an evicted key's bits stay set (a false positive, which
	// only costs the lookup) until the filter is rebuilt from m, when the
	// keys it has taken (memberKeys) pass its capacity. See memberMask.
	member     []uint64
	memberKeys int
	// untracked counts the writes of untracked keys between writing and
	// applied; untrackedMark is the highest version such a write applied.
	// Reads teach the shard nothing unless untracked is 0 and their
	// snapshot is at or above untrackedMark. applied updates both without
	// the lock, the mark first.
	untracked     atomic.Int64
	untrackedMark atomic.Uint64
}

// Sizes of a shard's admission filter: bits, and keys before it is cleared.
const (
	doorBits    = 1 << 16
	doorKeysMax = doorBits / 16
)

// The membership filter is blocked: a key sets 3 bits of one 64-bit word
// (memberMask), so a lookup reads one word. A filter of w words takes
// w*memberKeysPerWord keys before it is rebuilt (about 16 bits per key, a
// false positive rate of about 1 %), and is rebuilt with room for twice
// the keys the shard then holds, at least memberMinWords words.
const (
	memberKeysPerWord = 4
	memberMinWords    = 64
)

// memberMix spreads a key's hash over the word and bit choices: the low
// bits of the hash chose the shard, so they are the same for all of the
// shard's keys.
func memberMix(h uint64) uint64 { return h * 0x9e3779b97f4a7c15 }

// memberMask returns the word of h in a filter of words words (a power of
// two, at most 1<<20) and the bits h sets in it. The word comes from bits
// 20-39 of the mixed hash and the bits from bits 46-63, so that they are
// independent.
func memberMask(h uint64, words int) (int, uint64) {
	m := memberMix(h)
	return int(m>>20) & (words - 1), 1<<(m>>58) | 1<<(m>>52&63) | 1<<(m>>46&63)
}

// mayHold reports whether s may hold the key of hash h: false means it
// does not. The caller holds s.mu.
func (s *latestShard) mayHold(h uint64) bool {
	if len(s.member) == 0 {
		return false // nothing was ever added
	}
	w, bits := memberMask(h, len(s.member))
	return s.member[w]&bits == bits
}

// noteMember sets the bits of a key of hash h that was added to s.m, and
// rebuilds the filter from s.m when it is full. The caller holds s.mu.
func (x *latestIndex) noteMember(s *latestShard, h uint64) {
	if s.memberKeys++; s.memberKeys <= len(s.member)*memberKeysPerWord {
		w, bits := memberMask(h, len(s.member))
		s.member[w] |= bits
		return
	}
	words := memberMinWords
	for words*memberKeysPerWord < 2*len(s.m) {
		words *= 2
	}
	if words == len(s.member) {
		clear(s.member)
	} else {
		s.member = make([]uint64, words)
	}
	for k := range s.m {
		w, bits := memberMask(maphash.String(x.seed, k), words)
		s.member[w] |= bits
	}
	s.memberKeys = len(s.m)
}

// writeTicket is what writing tells applied: the key's shard, and whether
// the index tracks the key.
type writeTicket uint8

const ticketTracked writeTicket = 0x80

type latestEntry struct {
	v      uint64
	rec    []byte // the stored value of version v when hasRec; its buffer is reused
	hasRec bool
}

// maxCachedRecord is the largest stored value (header and payload) the
// index caches.
const maxCachedRecord = 512

// keyBytesPerEntry is the average key length the index's key bytes are
// budgeted for: maxEntries entries hold keys of maxEntries*keyBytesPerEntry
// bytes in all. (A stored key of a 16-byte user key takes 35 bytes.)
const keyBytesPerEntry = 64

// newLatestIndex returns an index of at most maxEntries entries (and their
// keys' budget) and maxCachedBytes of cached records, for a store whose
// versions up to opened were recovered, and whose highest applied version
// appliedVersion reports.
func newLatestIndex(maxEntries, maxCachedBytes int64, opened uint64, appliedVersion func() uint64) *latestIndex {
	x := &latestIndex{seed: maphash.MakeSeed(), maxCached: maxCachedBytes, appliedVersion: appliedVersion}
	shards := int64(len(x.shards))
	x.shardEntries = max(1, maxEntries/shards)
	x.shardKeyBytes = max(1, maxEntries*keyBytesPerEntry/shards)
	x.floor.Store(opened)
	for i := range x.shards {
		x.shards[i].m = map[string]*latestEntry{}
	}
	return x
}

// shardHash returns prefix's shard and hash. The shard is the hash modulo
// the number of shards (writeTicket relies on it).
func (x *latestIndex) shardHash(prefix []byte) (*latestShard, uint64) {
	h := maphash.Bytes(x.seed, prefix)
	return &x.shards[h%uint64(len(x.shards))], h
}

// admit reports whether a key of hash h that s does not track was written
// recently already; if not, it remembers it. The caller holds s.mu.
func (s *latestShard) admit(h uint64) bool {
	// The low bits chose the shard; the filter's two bits come from others.
	b1, b2 := (h>>8)%doorBits, (h>>32)%doorBits
	w1, m1 := b1/64, uint64(1)<<(b1%64)
	w2, m2 := b2/64, uint64(1)<<(b2%64)
	if s.door[w1]&m1 != 0 && s.door[w2]&m2 != 0 {
		return true
	}
	s.door[w1] |= m1
	s.door[w2] |= m2
	if s.doorKeys++; s.doorKeys >= doorKeysMax {
		s.door, s.doorKeys = [doorBits / 64]uint64{}, 0
	}
	return false
}

// get returns the newest version recorded for prefix (a key's bare key) and,
// if it is cached, a copy of its stored value: whole, or only its header
// (keyenc.HeaderLen bytes) if header is set.
func (x *latestIndex) get(prefix []byte, header bool) (v uint64, rec []byte, ok bool) {
	s, h := x.shardHash(prefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mayHold(h) {
		return 0, nil, false
	}
	if e := s.m[string(prefix)]; e != nil {
		if e.hasRec {
			r := e.rec
			if header {
				r = r[:keyenc.HeaderLen]
			}
			rec = append([]byte(nil), r...)
		}
		return e.v, rec, true
	}
	return 0, nil, false
}

// inFlight marks an entry whose key a commit is applying.
const inFlight = ^uint64(0)

// tracked reports whether the index tracks a key of tag.
func tracked(tag keyenc.Tag) bool { return tag != keyenc.TagEvent }

// writing marks prefix in flight before a commit applies a version of it,
// or counts an untracked write in flight (see the type's comment); applied
// must follow, with the ticket.
func (x *latestIndex) writing(prefix []byte) writeTicket {
	s, h := x.shardHash(prefix)
	t := writeTicket(h % uint64(len(x.shards)))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mayHold(h) {
		if e := s.m[string(prefix)]; e != nil {
			e.v, e.hasRec = inFlight, false
			return t | ticketTracked
		}
	}
	if !s.admit(h) {
		s.untracked.Add(1) // a first write
		return t
	}
	for !x.fits(s, len(prefix)) {
		if !x.evict(s) {
			break // every entry is in flight: grow past the shard's share
		}
	}
	x.add(s, prefix, h, &latestEntry{v: inFlight})
	return t | ticketTracked
}

// tracks reports whether the write of ticket t is tracked.
func (t writeTicket) tracks() bool { return t&ticketTracked != 0 }

// fits reports whether s, within its shares of the index's entries and key
// bytes, has room for one more entry, of a key of n bytes. The caller holds
// s.mu.
func (x *latestIndex) fits(s *latestShard, n int) bool {
	return int64(len(s.m)) < x.shardEntries && s.keyBytes+int64(n) <= x.shardKeyBytes
}

// add inserts a new entry for prefix, of hash h. The caller holds s.mu.
func (x *latestIndex) add(s *latestShard, prefix []byte, h uint64, e *latestEntry) {
	k := string(prefix)
	s.m[k] = e
	s.keyBytes += int64(len(k))
	s.fifo = append(s.fifo, k)
	if len(s.fifo)-s.head > 2*len(s.m)+fifoSlack {
		s.compactFIFO()
	}
	x.noteMember(s, h)
}

// fifoSlack is how many slots fifo may hold beyond twice the shard's keys
// before add compacts it.
const fifoSlack = 1024

// compactFIFO drops the slots of fifo that name no key of m, and all but
// the newest slot of a key, keeping the order. Run when the slots reach
// twice the keys plus fifoSlack, it costs a constant per slot dropped. The
// caller holds s.mu.
func (s *latestShard) compactFIFO() {
	live := s.fifo[s.head:]
	seen := make(map[string]struct{}, len(s.m))
	n := len(live)
	for i := len(live) - 1; i >= 0; i-- {
		k := live[i]
		if _, dup := seen[k]; dup || s.m[k] == nil {
			continue
		}
		seen[k] = struct{}{}
		n--
		live[n] = k
	}
	kept := copy(s.fifo, live[n:])
	clear(s.fifo[kept:])
	s.fifo, s.head = s.fifo[:kept], 0
}

// remove deletes the entry of key k from s. The caller holds s.mu.
func (x *latestIndex) remove(s *latestShard, k string, e *latestEntry) {
	x.cached.Add(-int64(cap(e.rec)))
	s.keyBytes -= int64(len(k))
	delete(s.m, k) // its fifo slot, if any, stays; evict skips it
}

// evict removes the oldest entry of s that is not in flight, if there is
// one, after raising the floor above its version, and reports whether it
// removed one. The caller holds s.mu.
func (x *latestIndex) evict(s *latestShard) (removed bool) {
	for tries := len(s.fifo) - s.head; tries > 0; tries-- {
		k := s.fifo[s.head]
		s.fifo[s.head] = ""
		s.head++
		e := s.m[k]
		if e == nil {
			continue // dropped by abandoned
		}
		if e.v == inFlight {
			s.fifo = append(s.fifo, k) // look again later
			continue
		}
		raiseTo(&x.floor, x.appliedVersion())
		x.remove(s, k, e)
		removed = true
		break
	}
	if s.head > 1024 && s.head > len(s.fifo)/2 {
		s.fifo = append(s.fifo[:0], s.fifo[s.head:]...)
		s.head = 0
	}
	return removed
}

// empty drops every entry that is not in flight, as eviction would (the
// floor is raised first), and gives back the memory of the shards' maps and
// FIFOs.
func (x *latestIndex) empty() {
	raiseTo(&x.floor, x.appliedVersion())
	for i := range x.shards {
		s := &x.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if e.v != inFlight {
				x.remove(s, k, e)
			}
		}
		if len(s.m) == 0 {
			s.m = map[string]*latestEntry{}
		}
		s.compactFIFO()
		s.fifo = append([]string(nil), s.fifo...) // a new, exact array
		s.mu.Unlock()
	}
}

// applied records that version v of prefix was applied, with its stored
// value (header then payload); t is what writing returned. An entry that
// is in flight takes v; one that already holds a newer version keeps it.
func (x *latestIndex) applied(prefix []byte, t writeTicket, v uint64, kind keyenc.Kind, ts int64, payload []byte) {
	s := &x.shards[t&^ticketTracked]
	if !t.tracks() {
		// Without the lock: a read that sees the count back at 0 sees the
		// raised mark.
		raiseTo(&s.untrackedMark, v)
		s.untracked.Add(-1)
		return
	}
	s.mu.Lock()
	if e := s.m[string(prefix)]; e != nil && (e.v == inFlight || e.v < v) {
		e.v = v
		x.cache(e, kind, ts, payload)
	}
	s.mu.Unlock()
}

// abandoned undoes writing for a commit refused before it got a version,
// of which nothing was applied; t is what writing returned. An untracked
// write stops counting in flight, and raises no mark. A tracked key's entry,
// in flight since writing overwrote what it said, is dropped, as eviction
// drops one: the floor is raised first (see the type's comment).
func (x *latestIndex) abandoned(prefix []byte, t writeTicket) {
	s := &x.shards[t&^ticketTracked]
	if !t.tracks() {
		s.untracked.Add(-1)
		return
	}
	s.mu.Lock()
	if e := s.m[string(prefix)]; e != nil && e.v == inFlight {
		raiseTo(&x.floor, x.appliedVersion())
		x.remove(s, string(prefix), e)
	}
	s.mu.Unlock()
}

// cache stores the value of e's version in e, within the budget. The
// caller holds e's shard lock.
func (x *latestIndex) cache(e *latestEntry, kind keyenc.Kind, ts int64, payload []byte) {
	e.hasRec = false
	n := keyenc.HeaderLen + len(payload)
	if n > maxCachedRecord {
		return
	}
	if cap(e.rec) < n {
		size := (n + 31) &^ 31 // some room for a slightly larger next value
		grow := int64(size - cap(e.rec))
		if x.cached.Load()+grow > x.maxCached {
			return
		}
		x.cached.Add(grow)
		e.rec = make([]byte, 0, size)
	}
	e.rec = append(keyenc.AppendHeader(e.rec[:0], kind, ts), payload...)
	e.hasRec = true
}

// raiseTo makes a at least v.
func raiseTo(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// fill caches the record of version v of prefix (its kind, timestamp and
// payload) if prefix's entry still says v and holds no record: a read found
// it by the entry's version after a read without the payload (see read)
// taught the version alone. A version's record never changes, so it is the
// entry's record.
func (x *latestIndex) fill(prefix []byte, v uint64, kind keyenc.Kind, ts int64, payload []byte) {
	s, h := x.shardHash(prefix)
	s.mu.Lock()
	if s.mayHold(h) {
		if e := s.m[string(prefix)]; e != nil && e.v == v && !e.hasRec {
			x.cache(e, kind, ts, payload)
		}
	}
	s.mu.Unlock()
}

// read records that rec, of version v (0: none), is the newest record of
// prefix at or below snapshot at, if nothing is recorded for it yet and the
// rules of the type's comment allow it. at must be a snapshot every write
// at or below which the read saw. The record is cached too if withRec (rec
// holds its payload).
func (x *latestIndex) read(prefix []byte, at, v uint64, rec Record, withRec bool) {
	s, h := x.shardHash(prefix)
	s.mu.Lock()
	if (!s.mayHold(h) || s.m[string(prefix)] == nil) && x.fits(s, len(prefix)) &&
		s.untracked.Load() == 0 && at >= s.untrackedMark.Load() && at >= x.floor.Load() {
		e := &latestEntry{v: v}
		if v != 0 && withRec {
			x.cache(e, rec.Kind, rec.Timestamp, rec.Payload)
		}
		x.add(s, prefix, h, e)
	}
	s.mu.Unlock()
}
