// Package value is Strata's structured value model: null, bool, int, float,
// string, bytes, array and object, with a compact, canonical binary encoding.
//
// Events, state cells and JSON documents store structured values, and diffs
// print them. Raw bytes need no encoding at all: a Bytes value at the top of
// a record is stored as the record's payload, byte for byte (see keyenc.Kind).
//
// # Canonical encoding (version 1)
//
// Every value has exactly one encoding, so equal values encode to equal bytes
// (and hash identically):
//
//	0x00                      null
//	0x01 / 0x02               false / true
//	0x03 int64                int, 8 bytes big-endian two's complement
//	0x04 float64              float, IEEE 754 bits big-endian; -0 is stored as +0
//	0x05 uvarint(n) bytes     string, n bytes of valid UTF-8
//	0x06 uvarint(n) bytes     bytes
//	0x07 uvarint(n) v*n       array of n values
//	0x08 uvarint(n) (uvarint(klen) key value)*n
//	                          object, keys valid UTF-8, strictly increasing bytewise
//
// NaN and infinities are rejected, and so is nesting deeper than MaxDepth.
package value

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/strata-db/strata/internal/serr"
)

// MaxDepth is the deepest nesting of arrays and objects a value may have. A
// scalar has depth 0; an array of scalars has depth 1.
const MaxDepth = 128

// Kind is the type of a Value.
type Kind uint8

// The kinds of value. The zero Value is Null.
const (
	KindNull Kind = iota
	KindBool
	KindInt
	KindFloat
	KindString
	KindBytes
	KindArray
	KindObject
)

var kindNames = [...]string{"null", "bool", "int", "float", "string", "bytes", "array", "object"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is an immutable structured value. The zero Value is null. Values
// built from slices or maps keep a reference to them: do not modify those
// after building the value.
type Value struct {
	kind Kind
	num  uint64 // bool (0/1), int64 bits, or float64 bits
	str  string
	raw  []byte
	arr  []Value
	obj  map[string]Value
}

// Null returns the null value.
func Null() Value { return Value{} }

// Bool returns a bool value.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// Int returns an int value.
func Int(i int64) Value { return Value{kind: KindInt, num: uint64(i)} }

// Float returns a float value. NaN and infinities are not storable: Validate
// and every write reject them.
func Float(f float64) Value { return Value{kind: KindFloat, num: math.Float64bits(f)} }

// String returns a string value. It must be valid UTF-8 to be storable.
func String(s string) Value { return Value{kind: KindString, str: s} }

// Bytes returns a byte-string value. A nil slice is an empty byte string, not
// null. The value shares b: do not change b while the value is in use.
func Bytes(b []byte) Value { return Value{kind: KindBytes, raw: b} }

// Array returns an array value. The value shares vs.
func Array(vs ...Value) Value { return Value{kind: KindArray, arr: vs} }

// Object returns an object value. The value shares m.
func Object(m map[string]Value) Value { return Value{kind: KindObject, obj: m} }

// Kind returns v's kind.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// AsBool returns v's bool and whether v is a bool.
func (v Value) AsBool() (bool, bool) { return v.num == 1, v.kind == KindBool }

// AsInt returns v's int and whether v is an int.
func (v Value) AsInt() (int64, bool) { return int64(v.num), v.kind == KindInt }

// AsFloat returns v's float and whether v is a float.
func (v Value) AsFloat() (float64, bool) { return math.Float64frombits(v.num), v.kind == KindFloat }

// AsString returns v's string and whether v is a string.
func (v Value) AsString() (string, bool) { return v.str, v.kind == KindString }

// AsBytes returns v's bytes and whether v is a byte string. The slice is
// shared with v.
func (v Value) AsBytes() ([]byte, bool) { return v.raw, v.kind == KindBytes }

// AsArray returns v's elements and whether v is an array. The slice is
// shared with v.
func (v Value) AsArray() ([]Value, bool) { return v.arr, v.kind == KindArray }

// AsObject returns v's fields and whether v is an object. The map is shared
// with v.
func (v Value) AsObject() (map[string]Value, bool) { return v.obj, v.kind == KindObject }

// Validate reports whether v is a valid value: no NaN or infinite float,
// valid UTF-8 in strings and object keys, and no nesting deeper than
// MaxDepth. The error matches strata.ErrInvalidValue.
// It does not check size: a database's writes also refuse a value whose
// stored payload exceeds strata.MaxValueSize, without walking more of it
// than that size (see AppendLimit). Validate walks the whole value, every
// use of a shared element included, so it takes as long as encoding it.
func (v Value) Validate() error {
	s := sizer{limit: math.MaxInt}
	return s.walk(v, 0)
}

// sizer validates a value and adds up the size of its encoding as it walks
// it, stopping as soon as the size passes limit. Each element visited adds
// at least one byte, so a walk visits at most limit+1 elements, however
// often the value shares its elements.
type sizer struct{ n, limit int }

func (s *sizer) add(k int) error {
	if k > s.limit-s.n {
		return fmt.Errorf("%w: encoding exceeds the maximum of %d bytes", serr.ErrInvalidValue, s.limit)
	}
	s.n += k
	return nil
}

// uvarintLen is the size of n's uvarint encoding.
func uvarintLen(n int) int {
	k := 1
	for ; n >= 0x80; n >>= 7 {
		k++
	}
	return k
}

func (s *sizer) walk(v Value, depth int) error {
	switch v.kind {
	case KindNull, KindBool:
		return s.add(1)
	case KindInt:
		return s.add(9)
	case KindFloat:
		f := math.Float64frombits(v.num)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%w: float %v is not storable", serr.ErrInvalidValue, f)
		}
		return s.add(9)
	case KindString:
		// The size first: a string past the limit is not read.
		if err := s.add(1 + uvarintLen(len(v.str)) + len(v.str)); err != nil {
			return err
		}
		if !utf8.ValidString(v.str) {
			return fmt.Errorf("%w: string is not valid UTF-8", serr.ErrInvalidValue)
		}
		return nil
	case KindBytes:
		return s.add(1 + uvarintLen(len(v.raw)) + len(v.raw))
	case KindArray, KindObject:
		if depth >= MaxDepth {
			return fmt.Errorf("%w: nested deeper than %d", serr.ErrInvalidValue, MaxDepth)
		}
		if err := s.add(1 + uvarintLen(len(v.arr)+len(v.obj))); err != nil {
			return err
		}
		for _, e := range v.arr {
			if err := s.walk(e, depth+1); err != nil {
				return err
			}
		}
		for k, e := range v.obj {
			if err := s.add(uvarintLen(len(k)) + len(k)); err != nil {
				return err
			}
			if !utf8.ValidString(k) {
				return fmt.Errorf("%w: object key is not valid UTF-8", serr.ErrInvalidValue)
			}
			if err := s.walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown kind %d", serr.ErrInvalidValue, v.kind)
	}
}

// Equal reports whether a and b are the same value: same kind and same
// contents. Floats compare by value (-0 equals +0); objects by their fields,
// whatever the map order. Values nested deeper than MaxDepth (invalid ones,
// which no write accepts; a value that contains itself is one) are not
// equal to anything: Equal stops there instead of recursing without end.
func Equal(a, b Value) bool { return equal(a, b, 0) }

func equal(a, b Value, depth int) bool {
	if a.kind != b.kind {
		return false
	}
	if (a.kind == KindArray || a.kind == KindObject) && depth >= MaxDepth {
		return false
	}
	eq := func(a, b Value) bool { return equal(a, b, depth+1) }
	switch a.kind {
	case KindNull:
		return true
	case KindBool, KindInt:
		return a.num == b.num
	case KindFloat:
		return math.Float64frombits(a.num) == math.Float64frombits(b.num)
	case KindString:
		return a.str == b.str
	case KindBytes:
		return bytes.Equal(a.raw, b.raw)
	case KindArray:
		return slices.EqualFunc(a.arr, b.arr, eq)
	case KindObject:
		return maps.EqualFunc(a.obj, b.obj, eq)
	}
	return false
}

// String formats v for people: JSON-like, object keys sorted, bytes as
// b"hex".
//
// A value nested deeper than MaxDepth (an invalid one: a value that
// contains itself, say) prints "..." past that depth, and the text stops,
// with "...", once it passes maxStringLen bytes (a value that shares its
// elements can stand for more text than memory holds).
func (v Value) String() string {
	var sb strings.Builder
	v.format(&sb, 0)
	return sb.String()
}

// maxStringLen bounds the text String returns (plus the "..." it ends
// with when it stops there).
const maxStringLen = 1 << 20

// stopped reports whether the text has passed maxStringLen, and then ends
// it with "..." (once): the caller writes no more of the value than the
// closing brackets of the containers it is in.
func stopped(sb *strings.Builder) bool {
	if sb.Len() <= maxStringLen {
		return false
	}
	if !strings.HasSuffix(sb.String(), "...") {
		sb.WriteString("...")
	}
	return true
}

func (v Value) format(sb *strings.Builder, depth int) {
	if stopped(sb) {
		return
	}
	if (v.kind == KindArray || v.kind == KindObject) && depth >= MaxDepth {
		sb.WriteString("...")
		return
	}
	switch v.kind {
	case KindNull:
		sb.WriteString("null")
	case KindBool:
		sb.WriteString(strconv.FormatBool(v.num == 1))
	case KindInt:
		sb.WriteString(strconv.FormatInt(int64(v.num), 10))
	case KindFloat:
		sb.WriteString(strconv.FormatFloat(math.Float64frombits(v.num), 'g', -1, 64))
	case KindString:
		sb.WriteString(strconv.Quote(v.str))
	case KindBytes:
		fmt.Fprintf(sb, "b\"%x\"", v.raw)
	case KindArray:
		sb.WriteByte('[')
		for i, e := range v.arr {
			if stopped(sb) {
				break
			}
			if i > 0 {
				sb.WriteByte(',')
			}
			e.format(sb, depth+1)
		}
		sb.WriteByte(']')
	case KindObject:
		sb.WriteByte('{')
		for i, k := range slices.Sorted(maps.Keys(v.obj)) {
			if stopped(sb) {
				break
			}
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.Quote(k))
			sb.WriteByte(':')
			v.obj[k].format(sb, depth+1)
		}
		sb.WriteByte('}')
	}
}
