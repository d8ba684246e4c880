package events

import (
	"fmt"

	"github.com/strata-db/strata/internal/serr"
)

var (
	// ErrInvalidEvent is returned for an event that cannot be appended: an
	// empty, too long or non-UTF-8 type, or a payload that is not a storable
	// object. It matches strata.ErrInvalidValue.
	ErrInvalidEvent = fmt.Errorf("%w: invalid event", serr.ErrInvalidValue)

	// ErrChainInvalid is returned by Verification.Err for a chain that failed
	// verification, wrapped in a *ChainError. It matches strata.ErrCorruption
	// (strata.ErrCorruption).
	ErrChainInvalid = fmt.Errorf("%w: event chain invalid", serr.ErrCorruption)
)

// ChainError is the error of a failed verification: the first bad sequence,
// the reason and a human-readable detail. It matches ErrChainInvalid and
// strata.ErrCorruption.
type ChainError struct {
	Seq    uint64
	Reason Reason
	Detail string
}

// Error implements error.
func (e *ChainError) Error() string {
	return fmt.Sprintf("%v: sequence %d: %v: %s", ErrChainInvalid, e.Seq, e.Reason, e.Detail)
}

// Unwrap returns ErrChainInvalid.
func (e *ChainError) Unwrap() error { return ErrChainInvalid }

// corruptf returns an error matching strata.ErrCorruption.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", serr.ErrCorruption, fmt.Sprintf(format, args...))
}
