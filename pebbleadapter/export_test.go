package pebbleadapter

import (
	"testing"
	"time"
)

// SetSyncMarkInterval sets the least time between two writes of the sync
// mark file for the rest of the test t. Tests that must not depend on the
// machine's speed set it to an hour.
func SetSyncMarkInterval(t testing.TB, d time.Duration) {
	old := syncMarkInterval
	syncMarkInterval = d
	t.Cleanup(func() { syncMarkInterval = old })
}

// DelayCloseFlushWait makes Close wait d, for the rest of the test t, after
// starting its flush and before looking at the outcome, so that a flush
// that fails fast has signalled both its failure and its retry's
// completion by then.
func DelayCloseFlushWait(t testing.TB, d time.Duration) {
	closeFlushStarted = func() { time.Sleep(d) }
	t.Cleanup(func() { closeFlushStarted = nil })
}
