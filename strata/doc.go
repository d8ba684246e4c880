// Package strata is an embedded transactional database engine for Go
// programs that keep their state in isolated runs.
//
// All data lives in a run (a RunID, a UUID). Pebble holds every record on
// disk under MVCC keys; one global commit version orders every commit, and
// reads happen at the visible version, so no reader sees a partly applied
// commit or a later commit without an earlier one.
//
// Open a database, write and read in a run, close it:
//
//	db, err := strata.Open("data")           // Batched durability
//	if err != nil { ... }
//	defer db.Close()
//	run := strata.NewRunID()
//	ver, err := db.Put(ctx, run, []byte("k"), value.String("v"))
//	got, err := db.Get(ctx, run, []byte("k")) // got.Value, got.Version
//
// The durability modes, the isolation promises and the on-disk format are
// documented in the repository's docs/ directory.
package strata
