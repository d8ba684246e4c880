package events

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unicode/utf8"

	"github.com/strata-db/strata/value"
)

// RecordVersion is the version of the stored event record, its first byte.
const RecordVersion = 1

// recordFixedLen is the length of a record's fixed part: the two version
// bytes, the timestamp and the two hashes.
const recordFixedLen = 1 + 1 + 8 + 32 + 32

// objectTag is the first byte of value's canonical encoding of an object.
const objectTag = 0x08

// AppendRecord appends the stored record of e to dst and returns the
// extended slice. payload must be the canonical encoding of e.Payload (the
// bytes e.Hash was computed over); e.Payload and e.Sequence are not read.
// The record is, with integers big-endian:
//
//	byte 0        RecordVersion (1)
//	byte 1        HashVersion (1)
//	bytes 2-9     timestamp, i64
//	bytes 10-41   previous hash
//	bytes 42-73   hash
//	then          uvarint len(type), type
//	then          payload, to the end
//
// The run and the sequence are in the event's key, not in the record.
func AppendRecord(dst []byte, e *Event, payload []byte) []byte {
	dst = append(dst, RecordVersion, HashVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Timestamp))
	dst = append(dst, e.PrevHash[:]...)
	dst = append(dst, e.Hash[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = append(dst, e.Type...)
	return append(dst, payload...)
}

// Record is a decoded event record whose payload is still encoded.
type Record struct {
	// HashVersion is the hash format the record's Hash was computed with.
	HashVersion uint8
	// Timestamp is the event's time in Unix nanoseconds.
	Timestamp int64
	// PrevHash is the stored hash of the previous event.
	PrevHash Hash
	// Hash is the stored hash of this event.
	Hash Hash
	// Type is the event type (a copy).
	Type string
	// Payload is the canonical encoding of the payload object. It aliases
	// the bytes given to DecodeRecord.
	Payload []byte
}

// DecodeRecord parses a stored event record without decoding its payload;
// Record.Payload aliases raw. A short record, an unknown record or hash
// version, a bad or non-minimal type length, a type that is empty, longer
// than MaxTypeLen or not valid UTF-8, or a payload that does not start as an
// object returns an error matching strata.ErrCorruption.
func DecodeRecord(raw []byte) (Record, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Record{}, err
	}
	return Record{
		HashVersion: HashVersion,
		Timestamp:   r.ts,
		PrevHash:    r.prev,
		Hash:        r.hash,
		Type:        string(r.typ),
		Payload:     r.payload,
	}, nil
}

// rawRecord is a decoded record whose type aliases the raw bytes, so that
// the Verifier decodes without allocating.
type rawRecord struct {
	ts         int64
	prev, hash Hash
	typ        []byte
	payload    []byte
}

func decodeRecord(raw []byte) (rawRecord, error) {
	if len(raw) < recordFixedLen {
		return rawRecord{}, corruptf("event record is %d bytes, shorter than %d", len(raw), recordFixedLen)
	}
	if raw[0] != RecordVersion {
		return rawRecord{}, corruptf("event record version %d, want %d", raw[0], RecordVersion)
	}
	if raw[1] != HashVersion {
		return rawRecord{}, corruptf("event record hash version %d, want %d", raw[1], HashVersion)
	}
	r := rawRecord{ts: int64(binary.BigEndian.Uint64(raw[2:10]))}
	copy(r.prev[:], raw[10:42])
	copy(r.hash[:], raw[42:74])

	rest := raw[recordFixedLen:]
	n, w := binary.Uvarint(rest)
	if w <= 0 {
		return rawRecord{}, corruptf("event record: bad type length")
	}
	if w != uvarintLen(n) {
		return rawRecord{}, corruptf("event record: non-minimal type length")
	}
	rest = rest[w:]
	if n > uint64(len(rest)) {
		return rawRecord{}, corruptf("event record: type length %d exceeds the remaining %d bytes", n, len(rest))
	}
	r.typ, r.payload = rest[:n], rest[n:]
	if problem := typeProblem(len(r.typ), utf8.Valid(r.typ)); problem != "" {
		return rawRecord{}, corruptf("event record: type %s", problem)
	}
	if len(r.payload) == 0 || r.payload[0] != objectTag {
		return rawRecord{}, corruptf("event record: payload is not an object")
	}
	if uint64(len(r.payload)) > math.MaxUint32 {
		return rawRecord{}, corruptf("event record: payload of %d bytes", len(r.payload))
	}
	return r, nil
}

// uvarintLen is the length of the minimal uvarint encoding of n.
func uvarintLen(n uint64) int { return (bits.Len64(n|1) + 6) / 7 }

// Event decodes the payload and returns the event at sequence seq (the
// sequence is in the event key, not in the record). A payload that does not
// decode or is not an object returns an error matching strata.ErrCorruption.
func (r Record) Event(seq uint64) (Event, error) {
	p, err := value.Decode(r.Payload)
	if err != nil {
		return Event{}, fmt.Errorf("event %d payload: %w", seq, err)
	}
	if p.Kind() != value.KindObject {
		return Event{}, corruptf("event %d payload is %v, not an object", seq, p.Kind())
	}
	return Event{
		Sequence:  seq,
		Type:      r.Type,
		Payload:   p,
		Timestamp: r.Timestamp,
		PrevHash:  r.PrevHash,
		Hash:      r.Hash,
	}, nil
}
