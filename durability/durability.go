// Package durability maps Strata's three durability modes onto Pebble's WAL
// and tracks the durable version: the highest commit version known to be
// synced to stable storage.
//
//   - Strict: every commit's WAL record is fsynced before the commit returns
//     (and before it becomes visible). Concurrent commits share fsyncs. A
//     background loop issues one more barrier per Interval while commits
//     arrive, only to record the store's progress.
//   - Batched: commits return once their WAL record is written; a
//     background syncer fsyncs the WAL every Interval, or sooner once
//     MaxPending commits are waiting. Everything at or below the reported
//     durable version survives a crash.
//   - None: Strata does not sync for a commit; the WAL is synced by Flush,
//     Shutdown, Close and the few other writes that need it (see
//     docs/durability.md). A crash may lose an acknowledged suffix.
//
// This package knows nothing of Pebble: it is handed a sync barrier (a
// function that makes every write applied before it durable) and a function
// that reports the highest applied version.
package durability

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is a durability mode.
type Mode uint8

// The durability modes. The zero value is Batched, the default.
const (
	Batched Mode = iota
	Strict
	None
)

// String returns "none", "batched" or "strict".
func (m Mode) String() string {
	switch m {
	case None:
		return "none"
	case Batched:
		return "batched"
	case Strict:
		return "strict"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Valid reports whether m is one of the three modes.
func (m Mode) Valid() bool { return m <= None }

// ParseMode parses a mode name as printed by String (case-insensitive), or
// "buffered", the original engine's name for Batched.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "none":
		return None, nil
	case "batched", "buffered":
		return Batched, nil
	case "strict":
		return Strict, nil
	}
	return 0, fmt.Errorf("durability: unknown mode %q (want none, batched, strict or buffered, the old name of batched)", s)
}

// SyncsEachCommit reports whether a commit in this mode waits for its own
// fsync.
func (m Mode) SyncsEachCommit() bool { return m == Strict }

// Defaults for Batched mode.
const (
	DefaultInterval   = 100 * time.Millisecond
	DefaultMaxPending = 1000
)

// BatchedConfig tunes Batched mode.
type BatchedConfig struct {
	// Interval is the longest time between background syncs while commits
	// are pending. The default is 100ms.
	Interval time.Duration
	// MaxPending is the number of unsynced commits that triggers a sync
	// before Interval has passed. The default is 1000.
	MaxPending int
}

// WithDefaults returns c with zero fields set to their defaults.
func (c BatchedConfig) WithDefaults() BatchedConfig {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	return c
}

// Validate rejects negative settings.
func (c BatchedConfig) Validate() error {
	if c.Interval < 0 {
		return fmt.Errorf("durability: negative sync interval %v", c.Interval)
	}
	if c.MaxPending < 0 {
		return fmt.Errorf("durability: negative max pending commits %d", c.MaxPending)
	}
	return nil
}

// Manager tracks the durable version and, in Batched mode, runs the
// background syncer.
type Manager struct {
	mode    Mode
	barrier func() error
	applied func() uint64

	durable atomic.Uint64
	pending atomic.Int64
	syncs   atomic.Uint64
	syncMu  sync.Mutex // one barrier at a time; waiting callers share the next
	// barriered is the applied version the last barrier covered (written
	// under syncMu). It trails durable in Strict mode, where commits sync
	// themselves.
	barriered atomic.Uint64

	// The background syncer: started by NewManager in Batched mode, and in
	// the other modes by the first Batched commit (a transaction's
	// override). loopMu guards starting and stopping it; kick and wake are
	// set before looping.
	loopMu  sync.Mutex
	looping atomic.Bool
	stopped bool
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	cfg     BatchedConfig
	// parked: the syncer found nothing to sync at its last tick, stopped
	// its ticker and waits on wake, which the next commit sends (see
	// unpark): an idle database costs no wake-ups.
	parked atomic.Bool
	wake   chan struct{}
}

// NewManager returns a Manager for mode. barrier must make every write
// applied before the call durable; applied returns the highest version whose
// write has been applied. recovered is the highest version found on open,
// durable by definition. In Batched and Strict modes the background syncer
// starts now; Close stops it. In Strict mode it has nothing to make durable:
// it issues a barrier once per Interval while commits arrive, which is how
// the store records its progress (pebbleadapter's sync marks).
func NewManager(mode Mode, cfg BatchedConfig, barrier func() error, applied func() uint64, recovered uint64) *Manager {
	m := &Manager{mode: mode, barrier: barrier, applied: applied, cfg: cfg.WithDefaults()}
	m.durable.Store(recovered)
	m.barriered.Store(recovered)
	if mode == Batched || mode == Strict {
		m.startLoop()
	}
	return m
}

// startLoop starts the background syncer unless it runs or was stopped.
func (m *Manager) startLoop() {
	m.loopMu.Lock()
	defer m.loopMu.Unlock()
	if m.looping.Load() || m.stopped {
		return
	}
	m.kick = make(chan struct{}, 1)
	m.wake = make(chan struct{}, 1)
	m.stop = make(chan struct{})
	m.done = make(chan struct{})
	go m.loop()
	m.looping.Store(true)
}

// Mode returns the manager's mode.
func (m *Manager) Mode() Mode { return m.mode }

// Durable returns the durable version: every commit at or below it survives
// a crash of the process or the machine.
func (m *Manager) Durable() uint64 { return m.durable.Load() }

// Syncs returns how many sync barriers the manager has issued.
func (m *Manager) Syncs() uint64 { return m.syncs.Load() }

// Synced records that version v was fsynced by its own commit (Strict). WAL
// order is version order, so every version below v is durable too.
func (m *Manager) Synced(v uint64) {
	m.unpark()
	m.advance(v)
}

// Committed records an unsynced commit made in mode: the manager's, or a
// transaction's override. A Batched commit counts towards MaxPending, which
// wakes the syncer; in a manager of another mode the first one starts the
// syncer, so that such commits too become durable about every Interval. Once
// started, the syncer runs until Stop or Close, and so also syncs the
// manager's own unsynced commits every Interval.
//
// Every commit must be reported, by Committed or Synced, after it is
// applied: a syncer that found nothing to do at a tick parks until the next
// report.
func (m *Manager) Committed(mode Mode) {
	m.unpark()
	if mode != Batched {
		return
	}
	if !m.looping.Load() {
		m.startLoop()
	}
	if m.pending.Add(1) >= int64(m.cfg.MaxPending) && m.looping.Load() {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// Sync makes every commit applied so far durable and returns the new
// durable version. It is Flush's engine. It issues a barrier whenever a
// commit was applied since the last one, even one that is durable already
// (a Strict commit synced itself): the barrier is also what the store
// records its progress by (pebbleadapter's sync marks).
func (m *Manager) Sync() (uint64, error) {
	target := m.applied()
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if m.barriered.Load() >= target {
		return m.durable.Load(), nil // a barrier that started after us covered it
	}
	// Read again under the lock: one barrier covers everything applied
	// before it starts.
	target = m.applied()
	m.pending.Store(0)
	m.syncs.Add(1)
	if err := m.barrier(); err != nil {
		return m.durable.Load(), err
	}
	m.barriered.Store(target)
	m.advance(target)
	return m.durable.Load(), nil
}

func (m *Manager) advance(v uint64) {
	for {
		cur := m.durable.Load()
		if v <= cur || m.durable.CompareAndSwap(cur, v) {
			return
		}
	}
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.kick:
		}
		if m.applied() <= m.barriered.Load() {
			if !m.park(t) {
				return
			}
			continue
		}
		if _, err := m.Sync(); err != nil {
			return // the database is failed; nothing more can be made durable
		}
	}
}

// park stops the syncer's ticker until a commit is reported (unpark), then
// restarts it, so that the commit is synced an Interval later as if the
// ticker had run. It returns false if the manager stopped meanwhile.
func (m *Manager) park(t *time.Ticker) bool {
	t.Stop()
	m.parked.Store(true)
	// A commit applied before parked was set may have reported itself
	// without seeing it; one applied after will see it. (Both are
	// sequentially consistent atomics: either the commit sees parked, or
	// this sees the commit.)
	if m.applied() > m.barriered.Load() && m.parked.CompareAndSwap(true, false) {
		t.Reset(m.cfg.Interval)
		return true
	}
	// Parked; or an unpark took parked back first, and its wake is on the
	// way.
	select {
	case <-m.stop:
		return false
	case <-m.wake:
	}
	t.Reset(m.cfg.Interval)
	return true
}

// unpark wakes a parked syncer; it costs one atomic load otherwise.
func (m *Manager) unpark() {
	if m.parked.Load() && m.parked.CompareAndSwap(true, false) {
		select {
		case m.wake <- struct{}{}:
		default: // a wake is pending already
		}
	}
}

// Stop stops the background syncer, if any, without syncing; it does not
// start again. It is idempotent.
func (m *Manager) Stop() {
	m.loopMu.Lock()
	defer m.loopMu.Unlock()
	m.stopped = true
	if m.looping.Load() {
		close(m.stop)
		<-m.done
		m.looping.Store(false)
	}
}

// Close stops the background syncer, if any, and syncs everything applied.
// It does not close the database.
func (m *Manager) Close() error {
	m.Stop()
	_, err := m.Sync()
	return err
}
