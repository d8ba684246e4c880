package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/strata-db/strata/internal/serr"
)

// HashVersion is the version of the hash input format computed by
// ComputeHash. It is part of the hash input and of every stored record.
const HashVersion = 1

// Domain is the domain tag at the start of every hash input, so that an
// event hash can never be mistaken for the hash of anything else.
const Domain = "strata.event"

// Hash is a SHA-256 event hash.
type Hash [32]byte

// String returns h in lowercase hex, 64 characters.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is 32 zero bytes, the previous hash of sequence 0.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses 64 hex digits (either case) into a Hash. The error
// matches strata.ErrInvalidValue.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("%w: hash %q is %d characters, not %d", serr.ErrInvalidValue, s, len(s), 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("%w: hash %q: %w", serr.ErrInvalidValue, s, err)
	}
	return h, nil
}

// hashHeaderCap is enough for the fixed part of a hash input with a type of
// up to MaxTypeLen bytes: everything but the payload and the previous hash.
const hashHeaderCap = 4 + len(Domain) + 1 + 16 + 8 + 4 + MaxTypeLen + 8 + 4

// ComputeHash returns the version-1 hash of an event of run run: SHA-256 over
// the concatenation of, with every integer big-endian,
//
//	u32 len(Domain), Domain    the domain tag "strata.event"
//	u8  HashVersion            1
//	run                        16 bytes
//	u64 seq
//	u32 len(typ), typ          the type's UTF-8 bytes
//	i64 ts                     Unix nanoseconds, two's complement
//	u32 len(payload), payload  the payload's canonical encoding (value.Encode)
//	prev                       32 bytes, zero for sequence 0
//
// payload must be the canonical encoding of the payload object: the hash is
// over these bytes, whatever they are. ComputeHash does not allocate (for a
// type of at most MaxTypeLen bytes). It panics if payload is 4 GiB or longer,
// which no valid event is.
func ComputeHash(run [16]byte, seq uint64, typ string, ts int64, payload []byte, prev Hash) Hash {
	var buf [hashHeaderCap]byte
	return computeHash(&buf, run, seq, typ, ts, payload, prev)
}

// computeHash is ComputeHash with the header buffer supplied, so that the
// Verifier can reuse one. The type may be a string or the bytes of a record.
func computeHash[S string | []byte](buf *[hashHeaderCap]byte, run [16]byte, seq uint64, typ S, ts int64, payload []byte, prev Hash) Hash {
	if uint64(len(payload)) > math.MaxUint32 || uint64(len(typ)) > math.MaxUint32 {
		panic("events: hash input field of 4 GiB or more")
	}
	b := buf[:0]
	b = binary.BigEndian.AppendUint32(b, uint32(len(Domain)))
	b = append(b, Domain...)
	b = append(b, HashVersion)
	b = append(b, run[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(typ)))
	b = append(b, typ...)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))

	d := sha256.New()
	d.Write(b)
	d.Write(payload)
	d.Write(prev[:])
	var h Hash
	d.Sum(h[:0])
	return h
}
