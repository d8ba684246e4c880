package mvcc_test

import (
	"errors"
	"testing"

	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/stretchr/testify/require"
)

// A commit refused because the database failed leaves no trace: it never
// reaches Pebble, so reopening the store does not bring it back.
func TestRefusedCommitNotVisibleAfterReopen(t *testing.T) {
	ts := newStore(t)
	// Synced: once the store fails, nothing more of its WAL reaches the
	// disk (pebbleadapter/fence.go), so only synced commits are sure to
	// survive the failure.
	c, err := ts.s.Apply([]mvcc.Write{put("k", "1")}, true)
	require.NoError(t, err)
	require.NoError(t, c.SyncWait())
	require.NoError(t, c.Publish())
	ts.db.Fail(errors.New("disk gone"))
	_, err = ts.s.Apply([]mvcc.Write{put("k", "refused")}, false)
	require.ErrorIs(t, err, serr.ErrFailed)

	ts.reopen(t)
	// A failed store cannot record its last version on Close: the next
	// open continues above the reservation that version 1 wrote.
	require.Equal(t, uint64(mvcc.VersionBlock), ts.s.Visible())
	rec, found := get(t, ts.s, "k", keyenc.MaxVersion)
	require.True(t, found)
	require.Equal(t, "1", string(rec.Payload), "the refused commit is not readable")
}
