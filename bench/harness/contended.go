package harness

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/strata-db/strata/strata"
)

// contendedRetry is how the contended group retries conflicts, Strata
// through strata.WithRetry and Badger through its own loop: many quick
// retries, since every conflict is lost to a commit that has already
// finished.
var contendedRetry = strata.RetryConfig{
	MaxRetries: 1000,
	BaseDelay:  10 * time.Microsecond,
	MaxDelay:   time.Millisecond,
}

// backoff returns the delay before retry number attempt+1 under c, as
// Strata computes it: BaseDelay doubled per retry, capped at MaxDelay, with
// full jitter.
func backoff(c strata.RetryConfig, attempt int) time.Duration {
	d := c.BaseDelay << min(attempt, 30)
	if d <= 0 || d > c.MaxDelay {
		d = c.MaxDelay
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// checkCounter checks that a counter read as (n, ok) equals the number of
// increments committed: that no increment was lost.
func checkCounter(n int64, ok bool, commits int64) error {
	if !ok {
		return errBadValue
	}
	if n != commits {
		return fmt.Errorf("harness: counter is %d after %d committed increments", n, commits)
	}
	return nil
}
