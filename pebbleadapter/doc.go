// Package pebbleadapter is the only package in Strata that imports Pebble.
//
// It opens a store on disk or on an in-memory filesystem with Strata's
// comparer and an explicit format version, installs a zerolog-backed logger
// whose Fatalf marks the database failed instead of exiting the process,
// provides a closed/failed gate (Enter and Leave) for callers to put in
// front of their calls (Pebble panics on a closed DB), maps Pebble's errors
// to Strata's sentinels, and exposes the
// batches, iterators, sync barrier and metrics the layers above need.
//
// # Gate
//
// Every operation of the layers above runs between Enter and Leave. Close
// (and Shutdown) first stops new operations from entering, then waits for
// those in flight to leave, then closes Pebble, so Pebble is never used
// after or during its Close. The gate is the caller's: Get, NewIter,
// Batch.Apply, FlushMemtable and SyncBarrier do not check it themselves,
// and called without Enter after Close they reach Pebble, which panics on
// a closed DB (a batch's Apply turns that panic into a failure).
//
// # Failure
//
// Pebble cannot survive an error on its WAL or MANIFEST: it panics, dies
// on a fatal runtime error, or calls Logger.Fatalf, whose default exits the
// process. So Pebble is opened on the caller's filesystem behind a fence
// (fence.go): the first WAL or MANIFEST error records the store's failure,
// and once the store has failed its files on disk stay as they were (WAL
// and MANIFEST writes dropped and reported as done, nothing removed). A
// failed flush, or a compaction that cannot write its table, fails the store
// too (Pebble would retry it and stall commits), without freezing the WAL;
// after a failure, flushes (and compactions during a write stall) write to
// memory so that commits waiting inside Pebble go on. This adapter's Fatalf records a failure
// too. Apply, SyncWait and SyncBarrier check for a recorded
// failure before reporting success, so a failed write is never
// acknowledged, and every later call returns an error matching
// serr.ErrFailed until the store is reopened.
package pebbleadapter
