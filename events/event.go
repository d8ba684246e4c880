package events

import (
	"fmt"
	"unicode/utf8"

	"github.com/strata-db/strata/value"
)

// MaxTypeLen is the longest event type, in bytes.
const MaxTypeLen = 256

// Event is one entry of a run's event log.
type Event struct {
	// Sequence is the event's position in its run's log: 0 for the first
	// event, contiguous, never reused by another durable event (an append
	// a crash takes back leaves its sequence to the next one).
	Sequence uint64
	// Type names the kind of event: non-empty valid UTF-8, at most
	// MaxTypeLen bytes.
	Type string
	// Payload is the event's data. It must be an object (value.KindObject).
	Payload value.Value
	// Timestamp is the append time in Unix nanoseconds, set by the engine.
	Timestamp int64
	// PrevHash is the hash of the event at Sequence-1, or 32 zero bytes for
	// sequence 0.
	PrevHash Hash
	// Hash is ComputeHash over the event's fields and PrevHash.
	Hash Hash
}

// ValidateType reports whether t can be an event type: non-empty, valid
// UTF-8 and at most MaxTypeLen bytes. The error matches ErrInvalidEvent.
func ValidateType(t string) error {
	if problem := typeProblem(len(t), utf8.ValidString(t)); problem != "" {
		return fmt.Errorf("%w: type %s", ErrInvalidEvent, problem)
	}
	return nil
}

// typeProblem returns why a type of n bytes, valid UTF-8 or not, is not a
// valid type, or "" if it is.
func typeProblem(n int, validUTF8 bool) string {
	switch {
	case n == 0:
		return "is empty"
	case n > MaxTypeLen:
		return fmt.Sprintf("is %d bytes, longer than %d", n, MaxTypeLen)
	case !validUTF8:
		return "is not valid UTF-8"
	}
	return ""
}

// ValidatePayload reports whether p can be an event payload: an object whose
// contents are storable (see value.Value.Validate). The error matches
// ErrInvalidEvent and strata.ErrInvalidValue.
func ValidatePayload(p value.Value) error {
	if err := payloadKind(p); err != nil {
		return err
	}
	return payloadError(p.Validate())
}

// EncodePayload validates p as ValidatePayload does and returns its
// canonical encoding, which must be at most limit bytes long: a longer one
// is refused as value.AppendLimit refuses it, before any of it is encoded.
func EncodePayload(p value.Value, limit int) ([]byte, error) {
	if err := payloadKind(p); err != nil {
		return nil, err
	}
	b, err := value.AppendLimit(nil, p, limit)
	if err != nil {
		return nil, payloadError(err)
	}
	return b, nil
}

// payloadKind refuses a payload that is not an object.
func payloadKind(p value.Value) error {
	if p.Kind() != value.KindObject {
		return fmt.Errorf("%w: payload is %v, not an object", ErrInvalidEvent, p.Kind())
	}
	return nil
}

// payloadError wraps err, a payload's refusal, in ErrInvalidEvent.
func payloadError(err error) error {
	if err != nil {
		return fmt.Errorf("%w: payload: %w", ErrInvalidEvent, err)
	}
	return nil
}
