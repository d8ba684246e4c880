package strata

import (
	"context"
	"testing"
	"time"

	"github.com/strata-db/strata/mvcc"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// A deadline that passes while the commit waits for the run's commit lock
// refuses the commit: validation, under the lock, looks at the context
// first.
func TestTimeoutWhileWaitingForTheCommitLock(t *testing.T) {
	db, err := OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	run := NewRunID()

	held, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		// A commit whose build step holds the run's lock until released.
		_, err := db.commitBuilt(run, func(uint64) ([]mvcc.Write, error) {
			close(held)
			<-release
			return nil, nil
		}, DurabilityNone)
		holder <- err
	}()
	<-held

	tx, err := db.Begin(ctx, run, WithTimeout(20*time.Millisecond))
	require.NoError(t, err)
	defer tx.End()
	require.NoError(t, tx.Put([]byte("k"), value.Int(1)))
	committed := make(chan error, 1)
	go func() { _, err := tx.Commit(); committed <- err }()
	time.Sleep(60 * time.Millisecond) // the deadline passes while it waits
	close(release)
	require.NoError(t, <-holder)
	require.ErrorIs(t, <-committed, context.DeadlineExceeded)
	_, err = db.Get(ctx, run, []byte("k"))
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, int64(1), db.Metrics().Transactions.Aborted)
}

// backoff doubles from BaseDelay up to MaxDelay and draws uniformly below
// that bound (full jitter).
func TestBackoffBounds(t *testing.T) {
	c := RetryConfig{MaxRetries: 50, BaseDelay: time.Millisecond, MaxDelay: 40 * time.Millisecond}
	for attempt, bound := range []time.Duration{1, 2, 4, 8, 16, 32, 40, 40, 40} {
		bound *= time.Millisecond
		var top time.Duration
		for range 2000 {
			d := backoff(c, attempt)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, bound, "attempt %d", attempt)
			top = max(top, d)
		}
		require.Greater(t, top, bound/2, "attempt %d: draws spread up to the bound", attempt)
	}
	require.LessOrEqual(t, backoff(c, 1000), c.MaxDelay, "no overflow on a huge attempt number")
	d := RetryConfig{}.withDefaults()
	require.Equal(t, RetryConfig{MaxRetries: DefaultMaxRetries, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}, d)
}
