// Package harness runs Strata, raw Pebble and Badger side by side on the same
// workloads and reports Strata's cost as a ratio to raw Pebble.
//
// The machine the project runs on is shared and noisy, so absolute times are
// never the result. A comparison Group runs its systems interleaved (A B C A B
// C ...) for several reps; every rep warms up, then times each operation with
// a pair of time.Now calls and pools the latencies of all goroutines. Each
// statistic (median, p99, throughput) is reduced to its median across reps,
// and the group's targets compare Strata with the baseline as a ratio of
// those medians.
//
// Inputs are 16-byte random keys and 100-byte random values, generated
// before the timed phase; every write uses a fresh key, except in the
// transaction groups that read: they load Config.TxnKeys keys into each
// rep's fresh store, untimed, and overwrite random ones of them. All systems
// of a group see the same keys in the same rep.
//
// The transaction groups (names starting "txn-") time Strata's
// Database.Transaction against raw Pebble's plain operations and Badger's
// DB.Update. Workloads that retry conflicts also count, over the timed
// phase, the attempts that aborted; the table shows the rate in a note
// column.
//
// Groups lists the comparisons; Run executes one; WriteMarkdown and JSON
// render the results. cmd/compare is the command-line front end.
package harness
