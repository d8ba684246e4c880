package durability

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{None, Batched, Strict} {
		got, err := ParseMode(m.String())
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	got, err := ParseMode("Buffered")
	require.NoError(t, err)
	require.Equal(t, Batched, got)
	_, err = ParseMode("async")
	require.Error(t, err)
	require.False(t, Mode(9).Valid())
	require.Equal(t, Batched, Mode(0), "the zero mode is Batched")
}

// fakeWAL counts barriers and lets tests move the applied version.
type fakeWAL struct {
	applied  atomic.Uint64
	barriers atomic.Int64
	fail     atomic.Bool
}

func (f *fakeWAL) barrier() error {
	f.barriers.Add(1)
	if f.fail.Load() {
		return errors.New("sync failed")
	}
	return nil
}

func TestSyncCoversEverythingApplied(t *testing.T) {
	f := &fakeWAL{}
	m := NewManager(None, BatchedConfig{}, f.barrier, f.applied.Load, 5)
	require.Equal(t, uint64(5), m.Durable(), "recovered versions are durable")
	d, err := m.Sync()
	require.NoError(t, err)
	require.Equal(t, uint64(5), d)
	require.Zero(t, f.barriers.Load(), "nothing new: no barrier")

	f.applied.Store(9)
	d, err = m.Sync()
	require.NoError(t, err)
	require.Equal(t, uint64(9), d)
	require.Equal(t, int64(1), f.barriers.Load())

	m.Synced(12) // a Strict commit synced itself
	require.Equal(t, uint64(12), m.Durable())
	m.Synced(10)
	require.Equal(t, uint64(12), m.Durable(), "the durable version never goes back")

	f.applied.Store(20)
	f.fail.Store(true)
	d, err = m.Sync()
	require.Error(t, err)
	require.Equal(t, uint64(12), d, "a failed barrier makes nothing durable")
	require.Error(t, m.Close(), "Close syncs, and reports the failed barrier")
}

func TestBatchedSyncsAfterMaxPending(t *testing.T) {
	f := &fakeWAL{}
	m := NewManager(Batched, BatchedConfig{Interval: time.Hour, MaxPending: 10}, f.barrier, f.applied.Load, 0)
	defer m.Close()
	for v := uint64(1); v <= 10; v++ {
		f.applied.Store(v)
		m.Committed(Batched)
	}
	require.Eventually(t, func() bool { return m.Durable() == 10 }, 10*time.Second, time.Millisecond)
	require.Equal(t, uint64(1), m.Syncs())
}

func TestBatchedSyncsOnInterval(t *testing.T) {
	f := &fakeWAL{}
	m := NewManager(Batched, BatchedConfig{Interval: time.Millisecond}, f.barrier, f.applied.Load, 0)
	f.applied.Store(3)
	m.Committed(Batched)
	require.Eventually(t, func() bool { return m.Durable() == 3 }, 10*time.Second, time.Millisecond)
	f.applied.Store(4)
	require.NoError(t, m.Close())
	require.Equal(t, uint64(4), m.Durable(), "Close syncs everything applied")
	m.Stop() // idempotent
}

func TestBatchedConfigDefaultsAndValidation(t *testing.T) {
	c := BatchedConfig{}.WithDefaults()
	require.Equal(t, DefaultInterval, c.Interval)
	require.Equal(t, DefaultMaxPending, c.MaxPending)
	require.Error(t, BatchedConfig{Interval: -1}.Validate())
	require.Error(t, BatchedConfig{MaxPending: -1}.Validate())
	require.NoError(t, c.Validate())
}

// A Batched commit in a None manager (a transaction's override) starts the
// background syncer, so it too becomes durable within the interval; None
// commits never do. (A Strict manager runs the syncer from the start.)
func TestBatchedOverrideStartsTheSyncer(t *testing.T) {
	mode := None
	f := &fakeWAL{}
	m := NewManager(mode, BatchedConfig{Interval: time.Millisecond}, f.barrier, f.applied.Load, 0)
	f.applied.Store(1)
	m.Committed(mode)
	require.False(t, m.looping.Load(), "%s: no syncer for the mode's own commits", mode)
	f.applied.Store(2)
	m.Committed(Batched)
	require.Eventually(t, func() bool { return m.Durable() == 2 }, 10*time.Second, time.Millisecond, "%s", mode)
	m.Stop()
	m.Committed(Batched) // after Stop, nothing starts again
	require.False(t, m.looping.Load())
	require.NoError(t, m.Close())
}

// In Strict mode commits sync themselves, so Sync has nothing to make
// durable; it still issues one barrier for commits applied since the last
// one (the store records its progress by barriers), and none when there is
// nothing new.
func TestStrictSyncIssuesABarrierForNewCommits(t *testing.T) {
	f := &fakeWAL{}
	m := NewManager(Strict, BatchedConfig{Interval: time.Hour}, f.barrier, f.applied.Load, 3)
	defer m.Stop()
	d, err := m.Sync()
	require.NoError(t, err)
	require.Equal(t, uint64(3), d)
	require.Zero(t, f.barriers.Load(), "nothing committed since open")

	f.applied.Store(7)
	m.Synced(7)
	d, err = m.Sync()
	require.NoError(t, err)
	require.Equal(t, uint64(7), d)
	require.Equal(t, int64(1), f.barriers.Load(), "one barrier for the commits since the last")
	_, err = m.Sync()
	require.NoError(t, err)
	require.Equal(t, int64(1), f.barriers.Load(), "no barrier without a new commit")
}

// In Strict mode the background loop issues a barrier per Interval while
// commits arrive (the store records its progress by barriers), and none
// while nothing is committed.
func TestStrictLoopIssuesBarriersForNewCommits(t *testing.T) {
	f := &fakeWAL{}
	m := NewManager(Strict, BatchedConfig{Interval: time.Millisecond}, f.barrier, f.applied.Load, 0)
	defer m.Stop()
	require.True(t, m.looping.Load(), "the loop runs from the start")
	f.applied.Store(4)
	m.Synced(4)
	require.Eventually(t, func() bool { return m.barriered.Load() == 4 }, 10*time.Second, time.Millisecond)
	n := f.barriers.Load()
	require.Positive(t, n)
	// Idle: the loop keeps ticking but issues nothing. (Some ticks pass.)
	deadline := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, n, f.barriers.Load(), "no barrier without a new commit")
	require.Equal(t, uint64(4), m.Durable())
}

// A syncer that finds nothing to sync parks: its ticker stops until the
// next commit is reported, so an idle database costs no wake-ups. Each kind
// of report wakes it: a Batched commit, a commit in the manager's own mode
// once an override started the syncer, and a Strict commit that synced
// itself.
func TestIdleSyncerParksUntilACommit(t *testing.T) {
	for _, tc := range []struct {
		mode   Mode
		report func(m *Manager, v uint64)
		done   func(m *Manager, v uint64) bool
	}{
		{Batched, func(m *Manager, _ uint64) { m.Committed(Batched) }, func(m *Manager, v uint64) bool { return m.Durable() == v }},
		{None, func(m *Manager, _ uint64) { m.Committed(None) }, func(m *Manager, v uint64) bool { return m.Durable() == v }},
		{Strict, func(m *Manager, v uint64) { m.Synced(v) }, func(m *Manager, v uint64) bool { return m.barriered.Load() == v }},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			f := &fakeWAL{}
			m := NewManager(tc.mode, BatchedConfig{Interval: time.Millisecond}, f.barrier, f.applied.Load, 0)
			defer m.Stop()
			if tc.mode == None {
				f.applied.Store(1)
				m.Committed(Batched) // an override starts the syncer
				require.Eventually(t, func() bool { return m.Durable() == 1 }, 10*time.Second, time.Millisecond)
			}
			require.Eventually(t, m.parked.Load, 10*time.Second, time.Millisecond, "idle: parked")
			n := f.barriers.Load()
			time.Sleep(20 * time.Millisecond) // twenty intervals
			require.True(t, m.parked.Load(), "nothing woke it")
			require.Equal(t, n, f.barriers.Load())

			first := f.applied.Load() + 1
			for v := first; v < first+3; v++ {
				f.applied.Store(v)
				tc.report(m, v)
				require.Eventually(t, func() bool { return tc.done(m, v) }, 10*time.Second, time.Millisecond, "version %d synced", v)
				require.Eventually(t, m.parked.Load, 10*time.Second, time.Millisecond, "parked again")
			}
		})
	}
}

// A commit reported while the syncer parks is never lost: each of a
// stream of commits spaced around the interval, so that they land just
// before, during and after the syncer parks, is synced without a Sync call.
func TestParkingLosesNoCommit(t *testing.T) {
	for _, mode := range []Mode{Batched, Strict} {
		f := &fakeWAL{}
		m := NewManager(mode, BatchedConfig{Interval: time.Millisecond}, f.barrier, f.applied.Load, 0)
		for v := uint64(1); v <= 500; v++ {
			time.Sleep(time.Duration(v%7) * 300 * time.Microsecond)
			f.applied.Store(v)
			if mode == Strict {
				m.Synced(v)
			} else {
				m.Committed(Batched)
			}
			require.Eventually(t, func() bool { return m.barriered.Load() == v }, 10*time.Second, 100*time.Microsecond, "%s: version %d synced", mode, v)
		}
		m.Stop()
	}
}

// The window the parking syncer must close: a commit applied and reported
// after the syncer found nothing to sync, but before it parked. The fake's
// applied function commits in that window, at the syncer's idle check.
func TestACommitJustBeforeParkingWakesTheSyncer(t *testing.T) {
	f := &fakeWAL{}
	var mp atomic.Pointer[Manager] // set once the syncer runs
	var inject atomic.Bool
	applied := func() uint64 {
		v := f.applied.Load()
		if m := mp.Load(); m != nil && v <= m.barriered.Load() && inject.CompareAndSwap(true, false) {
			f.applied.Store(v + 1) // applied after the syncer read v
			m.Committed(Batched)
		}
		return v
	}
	m := NewManager(Batched, BatchedConfig{Interval: time.Millisecond}, f.barrier, applied, 0)
	mp.Store(m)
	defer m.Stop()
	require.Eventually(t, m.parked.Load, 10*time.Second, time.Millisecond)
	inject.Store(true)
	f.applied.Store(1)
	m.Committed(Batched)
	require.Eventually(t, func() bool { return m.Durable() == 2 }, 10*time.Second, time.Millisecond,
		"the commit made as the syncer parked is synced")
	require.False(t, inject.Load(), "the commit was made in the window")
}
