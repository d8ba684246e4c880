package strata

import (
	"fmt"
	"strings"

	"github.com/strata-db/strata/internal/serr"
)

// Errors returned by Strata. Match them with errors.Is: the returned errors
// wrap them with context.
var (
	// ErrClosed: the database was closed or shut down.
	ErrClosed = serr.ErrClosed
	// ErrFailed: the database hit an unrecoverable storage error (WAL write
	// or sync failure); reopen it. Nothing after the failure was acknowledged.
	ErrFailed = serr.ErrFailed
	// ErrLocked: another process or another open Database holds the
	// directory.
	ErrLocked = serr.ErrLocked
	// ErrCorruption: stored bytes failed a checksum or did not decode.
	ErrCorruption = serr.ErrCorruption
	// ErrNotFound: the key is absent (never written, or deleted).
	ErrNotFound = serr.ErrNotFound
	// ErrInvalidKey: an empty key, or one longer than MaxKeySize.
	ErrInvalidKey = serr.ErrInvalidKey
	// ErrInvalidValue: a value larger than MaxValueSize, a NaN or infinite
	// float, invalid UTF-8 in a string, or nesting deeper than
	// value.MaxDepth.
	ErrInvalidValue = serr.ErrInvalidValue
	// ErrInvalidRunID: the nil run id, or a string that is not a UUID.
	ErrInvalidRunID = serr.ErrInvalidRunID
	// ErrInvalidOptions: Options.Validate rejected the configuration.
	ErrInvalidOptions = serr.ErrInvalidOptions
	// ErrConflict: a commit lost against a concurrent one. The error is a
	// *ConflictError naming the keys.
	ErrConflict = serr.ErrConflict
)

// ConflictError reports a commit that failed validation. It matches
// ErrConflict with errors.Is.
type ConflictError struct {
	Run RunID
	// Keys are the user keys whose check failed.
	Keys [][]byte
	// Reason says what failed, for example
	// "compare-and-swap expected version 3, found 5".
	Reason string
}

func (e *ConflictError) Error() string {
	keys := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		keys[i] = fmt.Sprintf("%q", k)
	}
	return fmt.Sprintf("strata: conflict in run %s on %s: %s", e.Run, strings.Join(keys, ", "), e.Reason)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }
