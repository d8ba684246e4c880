// Package mvcc keeps versioned records in Pebble: reads of the newest
// version at or below a snapshot version, scans at a snapshot, per-key
// history, and atomic application of a write set at one commit version.
//
// # Versions
//
// One global commit version (uint64) orders every commit; the first commit of
// a new store gets version 1, and 0 means "absent". The Store allocates
// versions and keeps a reservation under a system key: every version ever
// applied is at or below it. Open writes the first one (VersionBlock ahead,
// synced), and the batch of the first version above a reservation writes
// the next one and is synced in every mode, so no acknowledged version can
// be handed out again after a crash. Close records the exact last version.
// Reopening a store continues above the record: at the next version after
// Close, above the reservation after a crash.
//
// Versions are allocated and batches applied under one short critical
// section (a memtable insert), so Pebble's WAL holds commits in version
// order: after a crash the recovered state is a prefix of version order.
// Waiting for an fsync happens outside that section, so concurrent synced
// commits share fsyncs.
//
// # Visibility
//
// Pebble makes a batch readable before its fsync. Strata does not read
// Pebble's "latest": readers use the visible version, the highest V such
// that every commit with version <= V has been applied and, when it asked to
// be, synced. Because batches are applied in version order and the WAL is
// synced in order, that is the highest applied version capped just below the
// oldest synced commit whose fsync is not yet confirmed; no snapshot ever
// holds version N+1 without version N.
package mvcc
