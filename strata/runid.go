package strata

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/strata-db/strata/internal/serr"
)

// RunID identifies a run: an isolated namespace of keys, events and state.
// It is a UUID; the nil UUID is not a valid run id.
type RunID uuid.UUID

// NewRunID returns a fresh, time-ordered run id (UUID version 7).
func NewRunID() RunID {
	u, err := uuid.NewV7()
	if err != nil { // the random source failed; fall back to version 4
		u = uuid.New()
	}
	return RunID(u)
}

// ParseRunID parses a UUID in any form uuid.Parse accepts. The nil UUID and
// malformed strings return an error matching ErrInvalidRunID.
func ParseRunID(s string) (RunID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return RunID{}, fmt.Errorf("%w: %q: %v", serr.ErrInvalidRunID, s, err)
	}
	r := RunID(u)
	return r, r.Validate()
}

// MustParseRunID is ParseRunID for constants; it panics on a bad id.
func MustParseRunID(s string) RunID {
	r, err := ParseRunID(s)
	if err != nil {
		panic(err)
	}
	return r
}

// String returns the canonical UUID form.
func (r RunID) String() string { return uuid.UUID(r).String() }

// IsZero reports whether r is the nil UUID.
func (r RunID) IsZero() bool { return r == RunID{} }

// Validate returns an error matching ErrInvalidRunID for the nil run id.
func (r RunID) Validate() error {
	if r.IsZero() {
		return fmt.Errorf("%w: the nil UUID", serr.ErrInvalidRunID)
	}
	return nil
}
