package mvcc

import (
	"sync"
	"sync/atomic"
)

// visibility tracks the visible version.
//
// Batches are applied in version order (under the store's sequencing lock),
// and Pebble syncs its WAL in order, so two facts decide visibility:
//
//   - applied: every version <= applied is in Pebble;
//   - synced: every version <= synced is durable.
//
// A commit applied without sync is visible once applied; a commit applied
// with sync only once its fsync is confirmed. So the visible version is
// applied, capped just below the oldest version that asked for a sync not
// yet confirmed. A confirmed sync of version V confirms every version below
// V too, so no commit waits for another's publication: a commit is visible
// as soon as its own conditions hold, unless an earlier Strict commit of
// another caller is still syncing.
type visibility struct {
	visible atomic.Uint64

	// syncedHint mirrors synced for a lock-free early exit: of a group of
	// commits released by one fsync, only the first to arrive needs the lock.
	syncedHint atomic.Uint64

	mu      sync.Mutex
	applied uint64
	synced  uint64
	pending []uint64 // versions applied with sync, not yet synced, ascending
	waiters []waiter // commits waiting to become visible
	err     error    // set on failure; the visible version stops for good
	failed  atomic.Pointer[error]
}

type waiter struct {
	v    uint64
	done chan struct{}
}

func (w *visibility) init(v uint64) {
	w.visible.Store(v)
	w.applied, w.synced = v, v
	w.syncedHint.Store(v)
}

// noteApplied records that version v was applied; sync says whether it
// waits for an fsync before it may become visible. Versions arrive in order.
func (w *visibility) noteApplied(v uint64, sync bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.applied = v
	if sync {
		w.pending = append(w.pending, v)
	}
	w.advanceLocked()
	return nil
}

// noteSynced records that every version <= v is durable.
func (w *visibility) noteSynced(v uint64) {
	if v <= w.syncedHint.Load() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || v <= w.synced {
		return
	}
	w.synced = v
	w.syncedHint.Store(v)
	i := 0
	for i < len(w.pending) && w.pending[i] <= v {
		i++
	}
	w.pending = w.pending[i:]
	w.advanceLocked()
}

func (w *visibility) advanceLocked() {
	target := w.applied
	if len(w.pending) > 0 {
		target = w.pending[0] - 1
	}
	if target <= w.visible.Load() {
		return
	}
	w.visible.Store(target)
	kept := w.waiters[:0]
	for _, wt := range w.waiters {
		if wt.v <= target {
			close(wt.done)
		} else {
			kept = append(kept, wt)
		}
	}
	clear(w.waiters[len(kept):])
	w.waiters = kept
}

// wait returns once version v is visible, or with the failure error.
func (w *visibility) wait(v uint64) error {
	if w.visible.Load() >= v {
		return nil
	}
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	if w.visible.Load() >= v {
		w.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	w.waiters = append(w.waiters, waiter{v: v, done: done})
	w.mu.Unlock()
	<-done
	if w.visible.Load() >= v {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// fail stops the visible version for good and wakes every waiter with err.
func (w *visibility) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.err = err
	w.failed.Store(&err)
	for _, wt := range w.waiters {
		close(wt.done)
	}
	w.waiters = nil
}
