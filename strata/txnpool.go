package strata

import (
	"bytes"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/strata-db/strata/mvcc"
)

// txnBuffers is a transaction's context: its write set, read set, CAS
// expectations and listed prefixes. Their keys are a tag byte followed by
// the user key, so KV keys, state cells and event records never collide.
// Contexts are pooled per database, so a steady stream of transactions
// allocates no new ones (the counterpart of the original engine's
// thread-local pool).
type txnBuffers struct {
	// pin is the snapshot of the transaction using the context, plus one
	// (0: idle). Version GC reads it, so that it never removes a version an
	// open transaction may read.
	pin atomic.Uint64

	writes writeSet
	reads  map[string]uint64
	cas    map[string]uint64
	// casMore holds the expectations of later CAS calls on a key that
	// differ from the first one in cas (each must hold at commit).
	casMore []casExpectation
	scans   []scanRead
	// scanIdx holds the tagged prefixes of scans once there are
	// scanIndexFrom of them (nil before), and scanLens their distinct
	// lengths in order: listed's index.
	scanIdx  map[string]struct{}
	scanLens []int
	ws       []mvcc.Write // the write set handed to the commit, reused
	req      commitReq    // the commit request, reused
	kbuf     []byte       // scratch for tagged map keys
	vbuf     []byte       // scratch for encoding structured values

	// arena holds copies of small payloads and write-set keys. It is
	// allocated once per context and never grows: what does not fit is
	// allocated on its own, so nothing placed here moves or is overwritten
	// until the context is reused, after its sets were emptied.
	arena []byte
}

// casExpectation is a CAS call's expected version for a tagged key.
type casExpectation struct {
	key      string
	expected uint64
}

// Arena sizing: a context's arena holds arenaSize bytes, and only pieces
// of at most arenaMaxPiece bytes go there, so that one large payload does
// not use it up.
const (
	arenaSize     = 8 << 10
	arenaMaxPiece = 1 << 10
)

// hold returns a copy of p that stays valid and unchanged until the
// context goes back to the pool.
func (b *txnBuffers) hold(p []byte) []byte {
	if len(p) > arenaMaxPiece || len(b.arena)+len(p) > cap(b.arena) {
		return bytes.Clone(p)
	}
	n := len(b.arena)
	b.arena = append(b.arena, p...)
	return b.arena[n:len(b.arena):len(b.arena)]
}

// holdString is hold for a write-set or map key: the string shares the
// held copy's bytes, which nothing writes to again while the key is in use
// (the sets are emptied before the arena is reused).
func (b *txnBuffers) holdString(p []byte) string {
	h := b.hold(p)
	return unsafe.String(unsafe.SliceData(h), len(h))
}

// maxPooledTxns bounds the pool; maxPooledEntries drops contexts whose maps
// grew large, so one huge transaction does not pin memory forever.
const (
	maxPooledTxns    = 64
	maxPooledEntries = 4096
	maxPooledScratch = 64 << 10
)

type txnPool struct {
	mu   sync.Mutex
	free []*txnBuffers
	// live holds every context not dropped: idle in free or in use.
	live    map[*txnBuffers]struct{}
	created atomic.Int64
	closed  bool // the database closed: nothing is pooled any more
}

func newTxnBuffers() *txnBuffers {
	return &txnBuffers{
		reads: map[string]uint64{},
		cas:   map[string]uint64{},
		arena: make([]byte, 0, arenaSize),
		req:   commitReq{done: make(chan struct{}, 1)},
	}
}

// get returns an idle context, pinned at version 0 (which holds back all
// version GC) until the caller pins its snapshot: a GC pass that reads the
// visible version before it sees the pin either sees this pin or runs
// before the caller reads its snapshot, which then is at least that
// visible version.
func (p *txnPool) get() *txnBuffers {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b *txnBuffers
	if n := len(p.free); n > 0 {
		b = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		b = p.add()
	}
	b.pin.Store(1)
	return b
}

// add creates a context and counts it live; p.mu is held.
func (p *txnPool) add() *txnBuffers {
	b := newTxnBuffers()
	if p.live == nil {
		p.live = map[*txnBuffers]struct{}{}
	}
	p.live[b] = struct{}{}
	p.created.Add(1)
	return b
}

// put unpins b and keeps it for reuse, or drops it if it grew large or the
// pool is full.
func (p *txnPool) put(b *txnBuffers) {
	b.pin.Store(0)
	keep := b.writes.len()+len(b.reads)+len(b.cas)+len(b.casMore)+len(b.scans) <= maxPooledEntries
	if keep {
		b.writes.reset()
		clear(b.reads)
		clear(b.cas)
		clear(b.casMore)
		b.casMore = b.casMore[:0]
		clear(b.scans)
		b.scans = b.scans[:0]
		b.scanIdx = nil
		b.scanLens = b.scanLens[:0]
		clear(b.ws)
		b.ws = b.ws[:0]
		b.arena = b.arena[:0]
		if cap(b.vbuf) > maxPooledScratch {
			b.vbuf = nil
		}
		if cap(b.kbuf) > maxPooledScratch {
			b.kbuf = nil
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if keep && len(p.free) < maxPooledTxns && !p.closed {
		p.free = append(p.free, b)
		return
	}
	delete(p.live, b)
}

// close drops the idle contexts, and any context put back later, so that a
// closed database that is still referenced does not hold their memory.
func (p *txnPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, b := range p.free {
		delete(p.live, b)
	}
	p.free = nil
}

// oldestPin returns the oldest snapshot of an open transaction, or visible
// if it is older. The caller must read visible before calling.
func (p *txnPool) oldestPin(visible uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	oldest := visible
	for b := range p.live {
		if pin := b.pin.Load(); pin != 0 {
			oldest = min(oldest, pin-1)
		}
	}
	return oldest
}

// WarmupTxns fills the transaction-context pool with contexts until it
// holds n of them (at most 64), so that the first transactions allocate
// none. After Close it does nothing: Close empties the pool.
func (db *Database) WarmupTxns(n int) {
	p := &db.txns
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && len(p.free) < min(n, maxPooledTxns) {
		p.free = append(p.free, p.add())
	}
}

// TxnPoolStats describes the transaction-context pool.
type TxnPoolStats struct {
	// Pooled is the number of idle contexts in the pool.
	Pooled int
	// Created is the number of contexts ever allocated.
	Created int64
}

// TxnPoolStats returns the pool's counters.
func (db *Database) TxnPoolStats() TxnPoolStats {
	db.txns.mu.Lock()
	defer db.txns.mu.Unlock()
	return TxnPoolStats{Pooled: len(db.txns.free), Created: db.txns.created.Load()}
}
