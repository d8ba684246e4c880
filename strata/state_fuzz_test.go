package strata

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// stateRecordBytes is appendStateRecord for the tests, with the value's
// canonical encoding.
func stateRecordBytes(t testing.TB, deleted bool, counter uint64, v *Value) []byte {
	var enc []byte
	if v != nil {
		var err error
		enc, err = value.Encode(*v)
		require.NoError(t, err)
	}
	return appendStateRecord(nil, stateRecord{deleted: deleted, counter: counter, value: enc})
}

func TestStateRecordEncoding(t *testing.T) {
	v := value.String("hi")
	live := stateRecordBytes(t, false, 7, &v)
	require.Equal(t, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 7}, live[:stateHeaderLen], "version 1, live, counter 7 big-endian")
	enc, err := value.Encode(v)
	require.NoError(t, err)
	require.Equal(t, enc, live[stateHeaderLen:])
	require.Equal(t, []byte{1, 1, 0, 0, 0, 0, 0, 0, 1, 2}, stateRecordBytes(t, true, 258, nil), "deleted, counter 258, no value")

	r, err := decodeStateRecord(live)
	require.NoError(t, err)
	require.Equal(t, stateRecord{counter: 7, value: enc}, r)
	r, err = decodeStateRecord(stateRecordBytes(t, true, math.MaxUint64, nil))
	require.NoError(t, err)
	require.Equal(t, stateRecord{deleted: true, counter: math.MaxUint64, value: []byte{}}, r)

	corrupt := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", []byte{1, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"version 0", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
		{"version 2", []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
		{"unknown flags", []byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
		{"live with counter 0", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"deleted with a value", []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0}},
	}
	for _, c := range corrupt {
		_, err := decodeStateRecord(c.b)
		require.ErrorIs(t, err, ErrCorruption, c.name)
	}
}

// FuzzDecodeStateRecord: decoding never panics, fails only with
// ErrCorruption, and a record that decodes re-encodes to the same bytes.
// The value bytes are not the record decoder's business, but decoding them
// (as StateRead does) must not panic either.
func FuzzDecodeStateRecord(f *testing.F) {
	seeds := []Value{
		value.Null(), value.Bool(true), value.Int(-1), value.Float(2.5), value.String("état"),
		value.Bytes([]byte{0, 0xff}), value.Array(value.Int(1), value.Null()),
		value.Object(map[string]Value{"a": value.Int(1), "b": value.Array()}),
	}
	for i, v := range seeds {
		f.Add(stateRecordBytes(f, false, uint64(i)+1, &v))
	}
	f.Add(stateRecordBytes(f, true, 3, nil))
	f.Add(stateRecordBytes(f, false, math.MaxUint64, nil))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0})

	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		r, err := decodeStateRecord(b)
		if !bytes.Equal(in, b) {
			t.Fatalf("decode modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("decode %x: error %v does not match ErrCorruption", b, err)
			}
			return
		}
		if r.deleted && len(r.value) != 0 {
			t.Fatalf("decode %x: deleted record with a value", b)
		}
		if !r.deleted && r.counter == 0 {
			t.Fatalf("decode %x: live record with counter 0", b)
		}
		if re := appendStateRecord(nil, r); !bytes.Equal(re, b) {
			t.Fatalf("decode %x then encode: %x", b, re)
		}
		if !r.deleted {
			if v, err := value.Decode(r.value); err != nil {
				if !errors.Is(err, ErrCorruption) {
					t.Fatalf("value of %x: error %v does not match ErrCorruption", b, err)
				}
			} else if enc, err := value.Encode(v); err != nil || !bytes.Equal(enc, r.value) {
				t.Fatalf("value of %x decodes to %v, which encodes to %x (%v)", b, v, enc, err)
			}
		}
	})
}
