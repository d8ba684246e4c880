package mvcc_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

const dir = "db"

var (
	runA = keyenc.RunID{0xA}
	runB = keyenc.RunID{0xA, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1} // adjacent to runA
)

// testStore is a Store over an adapter DB on a MemFS that can be reopened.
type testStore struct {
	fs vfs.FS
	db *pebbleadapter.DB
	s  *mvcc.Store
}

func newStore(t *testing.T) *testStore {
	t.Helper()
	ts := &testStore{fs: vfs.NewMem()}
	ts.open(t)
	t.Cleanup(func() { _ = ts.db.Close() })
	return ts
}

func (ts *testStore) open(t *testing.T) {
	t.Helper()
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: ts.fs})
	require.NoError(t, err)
	s, err := mvcc.Open(db)
	require.NoError(t, err)
	ts.db, ts.s = db, s
}

// reopen closes the Store and the adapter and opens a new adapter and Store
// on the same filesystem. Closing a failed adapter returns its failure.
func (ts *testStore) reopen(t *testing.T) {
	t.Helper()
	require.NoError(t, ts.s.Close())
	ts.restart(t)
}

// restart is reopen without Store.Close: what a process that stopped
// without closing leaves (a crash, for whatever reached the WAL).
func (ts *testStore) restart(t *testing.T) {
	t.Helper()
	if err := ts.db.Close(); ts.db.Failed() == nil {
		require.NoError(t, err)
	}
	ts.open(t)
}

func put(key string, payload string) mvcc.Write {
	return mvcc.Write{Run: runA, Tag: keyenc.TagKV, Key: []byte(key), Kind: keyenc.KindBytes, Payload: []byte(payload)}
}

func del(key string) mvcc.Write {
	return mvcc.Write{Run: runA, Tag: keyenc.TagKV, Key: []byte(key), Kind: keyenc.KindTombstone}
}

// commit applies ws without sync (unless it starts a new version
// reservation, which is synced), publishes it, and returns the commit.
func commit(t *testing.T, s *mvcc.Store, ws ...mvcc.Write) *mvcc.Commit {
	t.Helper()
	c, err := s.Apply(ws, false)
	require.NoError(t, err)
	if c.Synced() {
		require.NoError(t, c.SyncWait())
	}
	require.NoError(t, c.Publish())
	return c
}

func get(t *testing.T, s *mvcc.Store, key string, at uint64) (mvcc.Record, bool) {
	t.Helper()
	rec, found, err := s.Get(runA, keyenc.TagKV, []byte(key), at)
	require.NoError(t, err)
	return rec, found
}
