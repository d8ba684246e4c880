package value

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/strata-db/strata/internal/serr"
)

// Encoding tags, see the package comment.
const (
	tagNull   = 0x00
	tagFalse  = 0x01
	tagTrue   = 0x02
	tagInt    = 0x03
	tagFloat  = 0x04
	tagString = 0x05
	tagBytes  = 0x06
	tagArray  = 0x07
	tagObject = 0x08
)

// Append validates v and appends its canonical encoding to dst. On error dst
// is returned unchanged in length.
func Append(dst []byte, v Value) ([]byte, error) { return AppendLimit(dst, v, math.MaxInt) }

// AppendLimit is Append for an encoding of at most limit bytes. A value
// whose encoding would be longer is refused with an error matching
// strata.ErrInvalidValue before any of it is encoded, and the refusal costs
// at most a walk of limit elements, even for a value that uses one element
// many times over (value.Array(v, v) nested 40 deep encodes to 2^40
// copies of v). dst grows once, to its final size.
func AppendLimit(dst []byte, v Value, limit int) ([]byte, error) {
	s := sizer{limit: limit}
	if err := s.walk(v, 0); err != nil {
		return dst, err
	}
	return appendValue(slices.Grow(dst, s.n), v), nil
}

// Encode returns the canonical encoding of v.
func Encode(v Value) ([]byte, error) { return Append(nil, v) }

func appendValue(dst []byte, v Value) []byte {
	switch v.kind {
	case KindNull:
		return append(dst, tagNull)
	case KindBool:
		if v.num == 1 {
			return append(dst, tagTrue)
		}
		return append(dst, tagFalse)
	case KindInt:
		return binary.BigEndian.AppendUint64(append(dst, tagInt), v.num)
	case KindFloat:
		bits := v.num
		if math.Float64frombits(bits) == 0 {
			bits = 0 // one encoding for zero: -0 becomes +0
		}
		return binary.BigEndian.AppendUint64(append(dst, tagFloat), bits)
	case KindString:
		dst = binary.AppendUvarint(append(dst, tagString), uint64(len(v.str)))
		return append(dst, v.str...)
	case KindBytes:
		dst = binary.AppendUvarint(append(dst, tagBytes), uint64(len(v.raw)))
		return append(dst, v.raw...)
	case KindArray:
		dst = binary.AppendUvarint(append(dst, tagArray), uint64(len(v.arr)))
		for _, e := range v.arr {
			dst = appendValue(dst, e)
		}
		return dst
	case KindObject:
		dst = binary.AppendUvarint(append(dst, tagObject), uint64(len(v.obj)))
		for _, k := range slices.Sorted(maps.Keys(v.obj)) {
			dst = binary.AppendUvarint(dst, uint64(len(k)))
			dst = append(dst, k...)
			dst = appendValue(dst, v.obj[k])
		}
		return dst
	}
	panic("value: unknown kind") // unreachable after Validate
}

// Decode decodes a canonical encoding. Anything else (trailing bytes,
// unsorted or duplicate object keys, NaN, invalid UTF-8, nesting deeper than
// MaxDepth, non-minimal varints) returns an error matching
// strata.ErrCorruption. Decoded strings and bytes are copies; b may be reused.
func Decode(b []byte) (Value, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return Value{}, err
	}
	if d.off != len(b) {
		return Value{}, d.errf("%d trailing bytes", len(b)-d.off)
	}
	return v, nil
}

type decoder struct {
	b   []byte
	off int
}

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("%w: value at byte %d: %s", serr.ErrCorruption, d.off, fmt.Sprintf(format, args...))
}

func (d *decoder) uvarint() (uint64, error) {
	n, w := binary.Uvarint(d.b[d.off:])
	if w <= 0 {
		return 0, d.errf("bad varint")
	}
	// Canonical: the minimal encoding only.
	if w != len(binary.AppendUvarint(nil, n)) {
		return 0, d.errf("non-minimal varint")
	}
	d.off += w
	return n, nil
}

// length reads a length prefix that must fit in the remaining bytes, each
// counted item taking at least min bytes.
func (d *decoder) length(min int) (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.b)-d.off)/uint64(min) {
		return 0, d.errf("length %d exceeds the remaining %d bytes", n, len(d.b)-d.off)
	}
	return int(n), nil
}

func (d *decoder) take(n int) []byte {
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) value(depth int) (Value, error) {
	if d.off >= len(d.b) {
		return Value{}, d.errf("truncated")
	}
	tag := d.b[d.off]
	d.off++
	switch tag {
	case tagNull:
		return Null(), nil
	case tagFalse, tagTrue:
		return Bool(tag == tagTrue), nil
	case tagInt, tagFloat:
		if len(d.b)-d.off < 8 {
			return Value{}, d.errf("truncated number")
		}
		bits := binary.BigEndian.Uint64(d.take(8))
		if tag == tagInt {
			return Int(int64(bits)), nil
		}
		f := math.Float64frombits(bits)
		if math.IsNaN(f) || math.IsInf(f, 0) || bits == 1<<63 {
			return Value{}, d.errf("non-canonical float %x", bits)
		}
		return Float(f), nil
	case tagString, tagBytes:
		n, err := d.length(1)
		if err != nil {
			return Value{}, err
		}
		raw := d.take(n)
		if tag == tagBytes {
			return Bytes(append([]byte{}, raw...)), nil
		}
		if !utf8.Valid(raw) {
			return Value{}, d.errf("string is not valid UTF-8")
		}
		return String(string(raw)), nil
	case tagArray:
		if depth >= MaxDepth {
			return Value{}, d.errf("nested deeper than %d", MaxDepth)
		}
		n, err := d.length(1)
		if err != nil {
			return Value{}, err
		}
		arr := make([]Value, n)
		for i := range arr {
			if arr[i], err = d.value(depth + 1); err != nil {
				return Value{}, err
			}
		}
		return Array(arr...), nil
	case tagObject:
		if depth >= MaxDepth {
			return Value{}, d.errf("nested deeper than %d", MaxDepth)
		}
		n, err := d.length(2)
		if err != nil {
			return Value{}, err
		}
		obj := make(map[string]Value, n)
		var prev string
		for i := range n {
			kl, err := d.length(1)
			if err != nil {
				return Value{}, err
			}
			k := string(d.take(kl))
			if !utf8.ValidString(k) {
				return Value{}, d.errf("object key is not valid UTF-8")
			}
			if i > 0 && k <= prev {
				return Value{}, d.errf("object keys out of order")
			}
			prev = k
			if obj[k], err = d.value(depth + 1); err != nil {
				return Value{}, err
			}
		}
		return Object(obj), nil
	default:
		return Value{}, d.errf("unknown tag 0x%02x", tag)
	}
}
