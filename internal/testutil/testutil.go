// Package testutil holds small helpers shared by Strata's tests.
package testutil

import (
	"testing"
	"time"
)

// StillBlocked polls done for 50ms and reports whether it stayed open:
// evidence (not proof) that the goroutine behind it is blocked. It never
// decides a pass by timing alone: callers then unblock the goroutine and
// require that done delivers (WaitFor).
func StillBlocked[T any](done <-chan T) bool {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
			time.Sleep(time.Millisecond)
		}
	}
	return true
}

// WaitFor fails the test if done does not deliver within a generous bound
// (a hang guard, not a timing assertion), and returns what it delivered.
func WaitFor[T any](t testing.TB, done <-chan T) T {
	t.Helper()
	select {
	case v := <-done:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("goroutine did not finish")
		panic("unreachable")
	}
}
