package strata

import (
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
func TestCombineConsumesTheSignalOfARequestAppliedByAnother(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := NewRunID()
	rs := db.runState(run)
	write := func(k string) []mvcc.Write {
		return []mvcc.Write{{Run: run, Tag: keyenc.TagKV, Key: []byte(k), Kind: keyenc.KindBytes, Payload: []byte(k)}}
	}
	mine := &commitReq{ws: write("mine"), done: make(chan struct{}, 1)}
	enqueue(rs, mine) // then this committer is descheduled...
	other := &commitReq{ws: write("other"), done: make(chan struct{}, 1)}
	enqueue(rs, other)
	db.await(rs, other) // ...while another takes the lock and applies both
	require.NoError(t, other.err)
	require.NotNil(t, mine.c, "the lock holder applied the queued request")
	require.Len(t, mine.done, 1, "and signalled it")

	db.await(rs, mine) // the lock is free again when this committer resumes
	require.Len(t, mine.done, 0, "the stale signal is consumed")
	require.NoError(t, mine.c.Publish())
	require.NoError(t, other.c.Publish())
}
