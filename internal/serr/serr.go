// Package serr declares the error sentinels shared by Strata's layers.
//
// The public package strata re-exports each of them under the same name, so
// users match them with errors.Is against strata.ErrClosed and friends; the
// lower layers (keyenc, pebbleadapter, mvcc, durability) return them wrapped
// with context.
package serr

import "errors"

var (
	// ErrClosed is returned by every call on a database that was closed or
	// shut down.
	ErrClosed = errors.New("strata: database closed")

	// ErrFailed is returned by every call on a database that hit an
	// unrecoverable storage error (a WAL write or sync failure, a MANIFEST
	// failure). The database must be closed and reopened.
	ErrFailed = errors.New("strata: database failed")

	// ErrLocked is returned by Open when another process or another open
	// Database in this process holds the directory.
	ErrLocked = errors.New("strata: database directory is locked")

	// ErrCorruption is returned when bytes read from disk do not decode:
	// a Pebble checksum mismatch or a malformed Strata record.
	ErrCorruption = errors.New("strata: corruption")

	// ErrNotFound is returned by point reads of an absent key.
	ErrNotFound = errors.New("strata: not found")

	// ErrInvalidKey is returned for an empty key or a key longer than the
	// documented maximum.
	ErrInvalidKey = errors.New("strata: invalid key")

	// ErrInvalidValue is returned for a value that cannot be stored: too
	// large, a NaN or infinite float, or nested too deeply.
	ErrInvalidValue = errors.New("strata: invalid value")

	// ErrInvalidRunID is returned for a run id that is not a valid, non-nil
	// UUID.
	ErrInvalidRunID = errors.New("strata: invalid run id")

	// ErrInvalidOptions is returned by Options.Validate and Open for bad
	// configuration.
	ErrInvalidOptions = errors.New("strata: invalid options")

	// ErrConflict is returned when a commit loses against a concurrent one:
	// a failed compare-and-swap or a read that is no longer current.
	ErrConflict = errors.New("strata: conflict")
)
