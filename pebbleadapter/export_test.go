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
