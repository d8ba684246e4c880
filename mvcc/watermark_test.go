package mvcc_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/internal/testutil"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

func apply(t *testing.T, s *mvcc.Store, sync bool, ws ...mvcc.Write) *mvcc.Commit {
	t.Helper()
	c, err := s.Apply(ws, sync)
	require.NoError(t, err)
	return c
}

func publishAsync(c *mvcc.Commit) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Publish() }()
	return done
}

// requireVisibleStays polls Visible for a short while and requires that it
// stays at want (the versions above are applied but must not be visible).
func requireVisibleStays(t *testing.T, s *mvcc.Store, want uint64, pending ...<-chan error) {
	t.Helper()
	for _, done := range pending {
		require.True(t, testutil.StillBlocked(done), "Publish returned before the commit could be visible")
	}
	require.Equal(t, want, s.Visible())
}

// An unsynced commit is visible as soon as Apply returns; Publish does not
// wait.
func TestUnsyncedCommitIsVisibleAtApply(t *testing.T) {
	ts := newStore(t)
	for want := uint64(1); want <= 3; want++ {
		c := apply(t, ts.s, false, put("k", fmt.Sprint(want)))
		require.Equal(t, want, ts.s.Visible())
		require.NoError(t, testutil.WaitFor(t, publishAsync(c)))
	}
	rec, found := get(t, ts.s, "k", ts.s.Visible())
	require.True(t, found)
	require.Equal(t, "3", string(rec.Payload))
}

// A commit applied with sync is not visible before its fsync is confirmed,
// and neither is any commit applied after it; confirming the fsync makes
// both visible at once.
func TestSyncedCommitHidesItselfAndLaterCommitsUntilSynced(t *testing.T) {
	ts := newStore(t)
	commit(t, ts.s, put("base", "0")) // 1
	c2 := apply(t, ts.s, true, put("k", "2"))
	c3 := apply(t, ts.s, false, put("k", "3"))
	require.Equal(t, uint64(3), ts.s.Applied())

	p3 := publishAsync(c3)
	requireVisibleStays(t, ts.s, 1, p3)
	// Pebble already holds both, but a reader at the visible version sees
	// neither.
	_, found := get(t, ts.s, "k", ts.s.Visible())
	require.False(t, found)

	require.NoError(t, c2.SyncWait())
	require.Equal(t, uint64(3), ts.s.Visible())
	require.NoError(t, testutil.WaitFor(t, p3))
	require.NoError(t, c2.Publish())
	rec, found := get(t, ts.s, "k", ts.s.Visible())
	require.True(t, found)
	require.Equal(t, "3", string(rec.Payload))
}

// Confirming the fsync of a later version confirms the earlier ones too
// (the WAL is synced in order): the visible version jumps over both.
func TestLaterSyncConfirmsEarlierOnes(t *testing.T) {
	ts := newStore(t)
	c1 := apply(t, ts.s, true, put("a", "1"))
	c2 := apply(t, ts.s, true, put("b", "2"))
	p1 := publishAsync(c1)
	requireVisibleStays(t, ts.s, 0, p1)
	require.NoError(t, c2.SyncWait())
	require.Equal(t, uint64(2), ts.s.Visible())
	require.NoError(t, testutil.WaitFor(t, p1))
	require.NoError(t, c1.SyncWait())
	require.NoError(t, c2.Publish())
	require.Equal(t, uint64(2), ts.s.Visible())
}

// Publishing in a random order from many goroutines always ends with every
// version visible, and the visible version only ever grows.
func TestPublishRandomOrder(t *testing.T) {
	ts := newStore(t)
	const n = 64
	commits := make([]*mvcc.Commit, n)
	for i := range commits {
		commits[i] = apply(t, ts.s, i%3 == 0, put(fmt.Sprint(i), "v"))
	}
	order := rand.New(rand.NewPCG(7, 7)).Perm(n)

	stop := make(chan struct{})
	var monotonic sync.WaitGroup
	monotonic.Go(func() {
		var last uint64
		for {
			v := ts.s.Visible()
			if v < last {
				t.Errorf("visible went back from %d to %d", last, v)
				return
			}
			last = v
			select {
			case <-stop:
				return
			default:
			}
		}
	})

	var wg sync.WaitGroup
	for _, i := range order {
		wg.Go(func() {
			c := commits[i]
			if err := c.SyncWait(); err != nil {
				t.Error(err)
			}
			if err := c.Publish(); err != nil {
				t.Error(err)
			}
			// Once Publish returns, the commit is in every new snapshot.
			if v := ts.s.Visible(); v < c.Version {
				t.Errorf("published %d but visible is %d", c.Version, v)
			}
		})
	}
	wg.Wait()
	close(stop)
	monotonic.Wait()
	require.Equal(t, uint64(n), ts.s.Visible())
}

// Store.Fail wakes the commits waiting to become visible with the error;
// after it the visible version never advances, even when the fsync the
// waiters were waiting for is confirmed later, and Apply refuses commits.
func TestFailWakesWaitersAndStopsVisibility(t *testing.T) {
	ts := newStore(t)
	c1 := apply(t, ts.s, true, put("k", "1")) // its fsync is not confirmed yet
	c2 := apply(t, ts.s, false, put("k", "2"))
	c3 := apply(t, ts.s, false, put("k", "3"))
	p2, p3 := publishAsync(c2), publishAsync(c3)
	requireVisibleStays(t, ts.s, 0, p2, p3)

	cause := errors.New("wal gone")
	ts.s.Fail(cause)
	require.ErrorIs(t, testutil.WaitFor(t, p2), cause)
	require.ErrorIs(t, testutil.WaitFor(t, p3), cause)
	require.Zero(t, ts.s.Visible(), "the failure does not make anything visible")

	_ = c1.SyncWait()
	require.Zero(t, ts.s.Visible(), "commits reported as failed never become visible")
	require.ErrorIs(t, c1.Publish(), cause)

	// Failing again keeps the first error, and no new commit is accepted.
	ts.s.Fail(errors.New("other"))
	c, err := ts.s.Apply([]mvcc.Write{put("k", "4")}, false)
	require.ErrorIs(t, err, cause)
	require.Nil(t, c)
	require.Equal(t, uint64(3), ts.s.Applied())
}

// A failed fsync (WAL on an errorfs that fails syncs once armed) wakes the
// commits waiting behind the failed one: none of them is acknowledged, and
// nothing at or above the failed version becomes visible. The failing fsync
// waits for fail to close, so that the commit behind it is applied first
// (the store fence records the failure as soon as the fsync returns).
func TestWALSyncFailureWakesLaterCommits(t *testing.T) {
	var armed atomic.Bool
	fail := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(fail) }) }
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if armed.Load() && len(op.Path) > 4 && op.Path[len(op.Path)-4:] == ".log" {
				<-fail
				return errorfs.ErrInjected
			}
		}
		return nil
	})
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: errorfs.Wrap(vfs.NewMem(), inj)})
	require.NoError(t, err)
	defer func() { require.NotPanics(t, func() { _ = db.Close() }) }()
	defer release() // before Close, also when a check failed early
	s, err := mvcc.Open(db)
	require.NoError(t, err)

	commit(t, s, put("k", "1"))
	armed.Store(true)
	c2 := apply(t, s, true, put("k", "2"))  // its fsync fails
	c3 := apply(t, s, false, put("k", "3")) // applied behind it
	p3 := publishAsync(c3)
	requireVisibleStays(t, s, 1, p3)

	release()
	err = c2.SyncWait()
	require.ErrorIs(t, err, serr.ErrFailed)
	require.ErrorIs(t, err, errorfs.ErrInjected)
	// SyncWait failed the store: the waiter behind c2 is released with the
	// failure, and c2 is never published.
	require.ErrorIs(t, testutil.WaitFor(t, p3), serr.ErrFailed)
	require.Equal(t, uint64(1), s.Visible())

	_, err = s.Apply([]mvcc.Write{put("k", "4")}, false)
	require.ErrorIs(t, err, serr.ErrFailed)
	require.ErrorIs(t, db.Enter(), serr.ErrFailed)
}

// The stress test behind the visibility guarantee: 8 writers commit 500
// times each, each commit writing its own key (mixing synced and unsynced
// commits), while a reader keeps taking snapshots at Visible() and checks
// that a snapshot S holds exactly the versions 1..S, each at its own key: no
// snapshot ever contains version N+1 without version N. A synced commit
// additionally checks, before its own SyncWait, that it is not visible
// unless the fsync of a later synced commit (which covers it: the WAL is
// synced in order) has been waited for.
func TestConcurrentCommitsNeverExposeAGap(t *testing.T) {
	ts := newStore(t)
	const writers, perWriter = 8, 500
	const total = writers * perWriter
	sp := space{runA, keyenc.TagKV}

	// syncWaited is the highest version of a synced commit whose SyncWait
	// has begun. Only a SyncWait confirms a fsync here, and it raises the
	// visible version after it began; so a synced commit that is visible
	// before its own SyncWait needs a higher version in syncWaited.
	var syncWaited atomic.Uint64
	var writersDone atomic.Bool
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				key := fmt.Sprintf("w%d/%04d", w, i)
				sync := (w+i)%4 == 0
				c, err := ts.s.Apply([]mvcc.Write{put(key, key)}, sync)
				if err != nil {
					t.Error(err)
					return
				}
				if sync && ts.s.Visible() >= c.Version {
					if w := syncWaited.Load(); w <= c.Version {
						t.Errorf("synced commit %d visible before any fsync covering it was confirmed (highest synced commit waited for: %d)", c.Version, w)
					}
				}
				runtime.Gosched()
				if c.Synced() {
					mvcc.RaiseTo(&syncWaited, c.Version)
				}
				if err := c.SyncWait(); err != nil {
					t.Error(err)
					return
				}
				if err := c.Publish(); err != nil {
					t.Error(err)
					return
				}
				if v := ts.s.Visible(); v < c.Version {
					t.Errorf("published %d but visible is %d", c.Version, v)
				}
			}
		})
	}

	var readerDone sync.WaitGroup
	var snapshots atomic.Int64
	readerDone.Go(func() {
		var lastS uint64
		for {
			finished := writersDone.Load()
			S := ts.s.Visible()
			if S < lastS {
				t.Errorf("visible went back from %d to %d", lastS, S)
				return
			}
			if a := ts.s.Applied(); a < S {
				t.Errorf("applied %d below visible %d", a, S)
				return
			}
			if S == lastS && !finished {
				runtime.Gosched() // nothing new: let the writers run
				continue
			}
			lastS = S
			snapshots.Add(1)
			seen := make([]bool, S+1)
			n := uint64(0)
			for e, err := range ts.s.Scan(sp.run, sp.tag, nil, nil, S) {
				if err != nil {
					t.Error(err)
					return
				}
				if e.Version == 0 || e.Version > S || seen[e.Version] || string(e.Payload) != string(e.Key) {
					t.Errorf("snapshot %d: scan yielded %s at version %d", S, e.Key, e.Version)
					return
				}
				seen[e.Version] = true
				n++
			}
			if n != S {
				t.Errorf("snapshot %d holds %d versions: a gap", S, n)
				return
			}
			if finished {
				return
			}
		}
	})

	wg.Wait()
	writersDone.Store(true)
	readerDone.Wait()
	require.Equal(t, uint64(total), ts.s.Visible())
	require.Equal(t, uint64(total), ts.s.Applied())
	t.Logf("reader checked %d snapshots", snapshots.Load())
}

// The commits of the stress test survive a reopen, and nothing was lost
// or duplicated.
func TestConcurrentCommitsThenReopen(t *testing.T) {
	ts := newStore(t)
	const writers, perWriter = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				c, err := ts.s.Apply([]mvcc.Write{put(fmt.Sprintf("w%d/%d", w, i), "v")}, i%2 == 0)
				if err == nil {
					err = c.SyncWait()
				}
				if err == nil {
					err = c.Publish()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	ts.reopen(t)
	require.Equal(t, uint64(writers*perWriter), ts.s.Visible())
	versions := map[uint64]bool{}
	for e, err := range ts.s.Scan(runA, keyenc.TagKV, nil, nil, ts.s.Visible()) {
		require.NoError(t, err)
		require.False(t, versions[e.Version])
		versions[e.Version] = true
	}
	require.Len(t, versions, writers*perWriter)
}
