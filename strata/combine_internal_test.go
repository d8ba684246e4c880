package strata

import (
	"fmt"
	"testing"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/stretchr/testify/require"
)

// A committer that queued its request, then found the run's lock free only
// after the previous holder had applied the request for it, must consume
// the holder's signal: a request recycled with a pending signal would wake
// its next user before that user's commit is applied (a commit reported
// done, and its buffers reused, while still waiting to be written).
//
// With sync, the holder signals the queued request only after its fsync is
// confirmed, after the lock is released: the resumed committer must wait for
// that signal rather than find it.
func TestCombineConsumesTheSignalOfARequestAppliedByAnother(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("sync=%v", sync), func(t *testing.T) {
			db, err := OpenWith(Options{Path: t.TempDir(), Durability: DurabilityStrict})
			require.NoError(t, err)
			defer db.Close()
			run := NewRunID()
			rs := db.runs.acquire(run)
			defer rs.release()
			write := func(k string) []mvcc.Write {
				return []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: []byte(k), Kind: keyenc.KindBytes, Payload: []byte(k)}}
			}
			mine := &commitReq{ws: write("mine"), sync: sync, done: make(chan struct{}, 1)}
			enqueue(rs, mine) // then this committer is descheduled...
			other := &commitReq{ws: write("other"), sync: sync, done: make(chan struct{}, 1)}
			enqueue(rs, other)
			db.await(rs, other) // ...while another takes the lock and applies both
			require.NoError(t, other.err)
			require.NotNil(t, mine.c, "the lock holder applied the queued request")
			require.Len(t, mine.done, 1, "and signalled it")

			db.await(rs, mine) // the lock is free again when this committer resumes
			require.Len(t, mine.done, 0, "the signal is consumed")
			for _, c := range []*mvcc.Commit{mine.c, other.c} {
				require.NoError(t, c.SyncWait())
				require.NoError(t, c.Publish())
			}
		})
	}
}

// A holder that applied synced commits for others signals them only once
// the fsync of the last of them is confirmed: a woken committer's commit is
// durable.
func TestCombineSignalsSyncedCommitsAfterTheirFsync(t *testing.T) {
	db, err := OpenWith(Options{Path: t.TempDir(), Durability: DurabilityStrict})
	require.NoError(t, err)
	defer db.Close()
	run := NewRunID()
	rs := db.runs.acquire(run)
	defer rs.release()
	var queued []*commitReq
	for i := range 5 {
		r := &commitReq{sync: true, done: make(chan struct{}, 1),
			ws: []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: fmt.Appendf(nil, "k%d", i), Kind: keyenc.KindBytes}}}
		enqueue(rs, r)
		queued = append(queued, r)
	}
	own := &commitReq{sync: true, done: make(chan struct{}, 1),
		ws: []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: []byte("own"), Kind: keyenc.KindBytes}}}
	enqueue(rs, own)
	db.await(rs, own)
	require.Len(t, own.done, 0, "the holder signals no one for its own request")
	for _, r := range queued {
		require.Len(t, r.done, 1)
		require.LessOrEqual(t, r.c.Version, db.store.Visible(), "signalled after its fsync made it visible")
	}
	require.NoError(t, own.c.SyncWait())
	require.NoError(t, own.c.Publish())
	for _, r := range queued {
		require.NoError(t, r.c.SyncWait())
		require.NoError(t, r.c.Publish())
	}
}

// A committer that finds the run's lock free applies its own request at
// once, then the requests queued meanwhile, and signals them.
func TestCommitterWithTheLockDrainsTheQueue(t *testing.T) {
	for _, mode := range []DurabilityMode{DurabilityNone, DurabilityStrict} {
		t.Run(mode.String(), func(t *testing.T) {
			db, err := OpenWith(Options{Path: t.TempDir(), Durability: mode})
			require.NoError(t, err)
			defer db.Close()
			run := NewRunID()
			rs := db.runs.acquire(run)
			defer rs.release()
			sync := mode == DurabilityStrict
			queued := &commitReq{sync: sync, done: make(chan struct{}, 1),
				ws: []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: []byte("queued"), Kind: keyenc.KindBytes}}}
			enqueue(rs, queued) // its committer is descheduled before it looks at the lock

			own := &commitReq{done: make(chan struct{}, 1)}
			own.ws = []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: []byte("own"), Kind: keyenc.KindBytes}}
			res, err := db.submit(rs, own, mode)
			require.NoError(t, err)
			require.Len(t, own.done, 0, "no one signals the caller's own request")
			require.NotNil(t, queued.c, "the queued request was applied too")
			require.Len(t, queued.done, 1, "and signalled")
			require.Greater(t, queued.c.Version, res.version, "after the caller's own")
			require.LessOrEqual(t, queued.c.Version, db.store.Visible())

			db.await(rs, queued) // its committer resumes: the lock is free, the queue empty
			require.Len(t, queued.done, 0, "the signal is consumed")
			require.NoError(t, queued.c.SyncWait())
			require.NoError(t, queued.c.Publish())
			require.True(t, rs.mu.TryLock(), "the lock is free")
			rs.mu.Unlock()
		})
	}
}
