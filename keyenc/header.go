package keyenc

import (
	"encoding/binary"
	"fmt"

	"github.com/strata-db/strata/internal/serr"
)

// HeaderVersion is the value-header format this version of Strata writes.
const HeaderVersion byte = 1

// HeaderLen is the size of a value header.
const HeaderLen = 10

// Kind says what follows a value header.
type Kind byte

// Value kinds. A tombstone is an explicit kind, never a null or empty
// payload: an empty byte string and a structured null are ordinary values.
const (
	// KindTombstone marks a deletion; it has no payload.
	KindTombstone Kind = 0x00
	// KindBytes is a raw byte string stored as is.
	KindBytes Kind = 0x01
	// KindValue is a structured value in the encoding of package value.
	KindValue Kind = 0x02
)

// Header is the decoded value header of a versioned record.
//
//	byte 0     header format version (1)
//	byte 1     kind
//	bytes 2-9  commit timestamp, Unix nanoseconds, big-endian int64
type Header struct {
	Kind      Kind
	Timestamp int64
}

// AppendHeader appends a value header to dst.
func AppendHeader(dst []byte, kind Kind, timestamp int64) []byte {
	dst = append(dst, HeaderVersion, byte(kind))
	return binary.BigEndian.AppendUint64(dst, uint64(timestamp))
}

// DecodeHeader splits a stored value into its header and payload. The
// payload aliases v.
func DecodeHeader(v []byte) (Header, []byte, error) {
	var h Header
	if len(v) < HeaderLen {
		return h, nil, fmt.Errorf("%w: value of %d bytes is shorter than its header", serr.ErrCorruption, len(v))
	}
	if v[0] != HeaderVersion {
		return h, nil, fmt.Errorf("%w: unknown value header version %d", serr.ErrCorruption, v[0])
	}
	h.Kind = Kind(v[1])
	switch h.Kind {
	case KindTombstone:
		if len(v) != HeaderLen {
			return h, nil, fmt.Errorf("%w: tombstone with a %d-byte payload", serr.ErrCorruption, len(v)-HeaderLen)
		}
	case KindBytes, KindValue:
	default:
		return h, nil, fmt.Errorf("%w: unknown value kind %d", serr.ErrCorruption, v[1])
	}
	h.Timestamp = int64(binary.BigEndian.Uint64(v[2:HeaderLen]))
	return h, v[HeaderLen:], nil
}

// FormatVersion is the on-disk format of a Strata store (key layout, value
// header and system records). It is written once, when the store is created,
// under the system key SysFormat, and checked on every open.
const FormatVersion uint32 = 1

// formatMagic opens the format record so that a stray Pebble store is not
// mistaken for a Strata one.
var formatMagic = [4]byte{'S', 'T', 'R', 'A'}

// EncodeFormat returns the format record for FormatVersion:
// "STRA" followed by the version as a big-endian uint32.
func EncodeFormat() []byte {
	return binary.BigEndian.AppendUint32(formatMagic[:], FormatVersion)
}

// DecodeFormat returns the format version in a format record.
func DecodeFormat(v []byte) (uint32, error) {
	if len(v) != 8 || [4]byte(v[:4]) != formatMagic {
		return 0, fmt.Errorf("%w: bad format record %x", serr.ErrCorruption, v)
	}
	return binary.BigEndian.Uint32(v[4:]), nil
}

// EncodeUint64 returns the 8-byte big-endian encoding used by system records
// that hold a counter (SysLastVersion).
func EncodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// DecodeUint64 decodes a counter record written by EncodeUint64.
func DecodeUint64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: counter record of %d bytes", serr.ErrCorruption, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
