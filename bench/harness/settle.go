package harness

import (
	"fmt"
	"time"
)

// activity is a snapshot of a store's background work: flushes and
// compactions finished, and the bytes on disk (which include compactions in
// progress). A store whose activity stays the same is quiescent.
type activity [3]int64

// settleLimit bounds the wait for a loaded store to quiesce.
const settleLimit = 2 * time.Minute

// settleAndWarm readies a loaded store for timing: it waits for background
// work to stop, reads every key once to fill the block cache, and waits
// again in case the reads triggered compactions.
func settleAndWarm(cfg Config, system string, n int, get func(i int) error, probe func() activity) error {
	settle(cfg, system, probe)
	for i := range n {
		if err := get(i); err != nil {
			return fmt.Errorf("warm key %d: %w", i, err)
		}
	}
	settle(cfg, system, probe)
	return nil
}

// settle waits until probe returns the same activity for cfg.Settle, or for
// settleLimit at most.
func settle(cfg Config, system string, probe func() activity) {
	start := time.Now()
	last, since := probe(), start
	for time.Since(start) < settleLimit {
		time.Sleep(cfg.Settle / 4)
		if cur := probe(); cur != last {
			last, since = cur, time.Now()
		} else if time.Since(since) >= cfg.Settle {
			return
		}
	}
	cfg.logf("%s: store still busy after %v; timing it anyway", system, settleLimit)
}
