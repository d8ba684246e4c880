package strata

import (
	"sync"

	"github.com/strata-db/strata/mvcc"
)

// Bounds of a commit group (see combine): requests, and bytes of writes.
const (
	maxGroupCommits = 128
	maxGroupBytes   = 4 << 20
)

// commitGroup is the group of requests the holder of a run's lock is about
// to apply in one batch, and the groups it applied with sync whose fsync it
// has yet to wait for. It belongs to the lock holder.
type commitGroup struct {
	reqs  []*commitReq
	wss   [][]mvcc.Write // reqs' write sets
	bytes int
	// synced holds the groups applied with sync since the lock was taken.
	synced *syncedGroups
}

// syncedGroups are groups applied with sync: their requests to signal
// (without the holder's own) and their commits, the last of which the
// holder waits for.
type syncedGroups struct {
	reqs    []*commitReq
	commits []mvcc.Commit
}

var syncedGroupsPool = sync.Pool{New: func() any { return new(syncedGroups) }}

func (g *commitGroup) add(r *commitReq) {
	g.reqs = append(g.reqs, r)
	g.wss = append(g.wss, r.ws)
	for i := range r.ws {
		g.bytes += len(r.ws[i].Key) + len(r.ws[i].Payload)
	}
}

func (g *commitGroup) full() bool {
	return len(g.reqs) >= maxGroupCommits || g.bytes >= maxGroupBytes
}

// keepSynced moves the applied group, committed as c, to the groups that
// wait for their fsync.
func (g *commitGroup) keepSynced(c mvcc.Commit, own *commitReq) {
	if g.synced == nil {
		g.synced = syncedGroupsPool.Get().(*syncedGroups)
	}
	for _, r := range g.reqs {
		if r != own {
			g.synced.reqs = append(g.synced.reqs, r)
		}
	}
	g.synced.commits = append(g.synced.commits, c)
	g.reset()
}

// reset empties the pending group.
func (g *commitGroup) reset() {
	clear(g.reqs)
	g.reqs = g.reqs[:0]
	clear(g.wss)
	g.wss = g.wss[:0]
	g.bytes = 0
}

// takeSynced hands the synced groups over to a caller that will finish
// them after the lock is released; nil if there are none.
func (g *commitGroup) takeSynced() *syncedGroups {
	s := g.synced
	g.synced = nil
	return s
}

// release empties s and returns it to the pool.
func (s *syncedGroups) release() {
	clear(s.reqs)
	s.reqs = s.reqs[:0]
	clear(s.commits)
	s.commits = s.commits[:0]
	syncedGroupsPool.Put(s)
}
