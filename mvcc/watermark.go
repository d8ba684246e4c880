package mvcc

import (
	"sync"
	"sync/atomic"
)

// watermark tracks the visible version: the highest V such that every
// version <= V has been published.
type watermark struct {
	visible atomic.Uint64

	mu      sync.Mutex
	cond    sync.Cond
	done    map[uint64]struct{} // published versions above visible+1
	waiters int
	err     error // set when the store failed; wakes every waiter
}

func (w *watermark) init(v uint64) {
	w.visible.Store(v)
	w.done = make(map[uint64]struct{})
	w.cond.L = &w.mu
}

// publish marks v done, advances the visible version over every contiguous
// done version, and waits until the visible version reaches v (an earlier
// version may still be waiting for its fsync). It returns the failure error
// if the store fails first.
func (w *watermark) publish(v uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	vis := w.visible.Load()
	if v == vis+1 {
		vis = v
		for {
			if _, ok := w.done[vis+1]; !ok {
				break
			}
			delete(w.done, vis+1)
			vis++
		}
		w.visible.Store(vis)
		if w.waiters > 0 {
			w.cond.Broadcast()
		}
		return nil
	}
	w.done[v] = struct{}{}
	for w.visible.Load() < v && w.err == nil {
		w.waiters++
		w.cond.Wait()
		w.waiters--
	}
	if w.visible.Load() < v {
		return w.err
	}
	return nil
}

// fail wakes every waiter with err; the visible version stops advancing.
func (w *watermark) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.cond.Broadcast()
	w.mu.Unlock()
}
