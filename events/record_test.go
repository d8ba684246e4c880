package events

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/value"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, e := range []Event{
		testEvent(0),
		{Type: "x", Payload: value.Object(nil), Timestamp: math.MinInt64, PrevHash: Hash{0xff}},
		{Sequence: math.MaxUint64, Type: strings.Repeat("é", MaxTypeLen/2), Payload: value.Object(map[string]value.Value{
			"b": value.Bytes(bytes.Repeat([]byte{0}, 300)),
		}), Timestamp: math.MaxInt64, PrevHash: Hash{1, 2, 3}},
	} {
		raw := seal(t, runA, &e)
		p := mustEncode(t, e.Payload)

		r, err := DecodeRecord(raw)
		require.NoError(t, err)
		require.Equal(t, Record{
			HashVersion: HashVersion,
			Timestamp:   e.Timestamp,
			PrevHash:    e.PrevHash,
			Hash:        e.Hash,
			Type:        e.Type,
			Payload:     p,
		}, r)

		got, err := r.Event(e.Sequence)
		require.NoError(t, err)
		require.True(t, value.Equal(e.Payload, got.Payload))
		got.Payload, e.Payload = value.Value{}, value.Value{}
		require.Equal(t, e, got)

		// The layout, field by field.
		require.Equal(t, byte(RecordVersion), raw[0])
		require.Equal(t, byte(HashVersion), raw[1])
		require.Equal(t, uint64(r.Timestamp), binary.BigEndian.Uint64(raw[2:10]))
		require.Equal(t, r.PrevHash[:], raw[10:42])
		require.Equal(t, r.Hash[:], raw[42:74])
		n, w := binary.Uvarint(raw[74:])
		require.Equal(t, uint64(len(r.Type)), n)
		require.Equal(t, r.Type, string(raw[74+w:74+w+int(n)]))
		require.Equal(t, p, raw[74+w+int(n):])

		// The payload aliases raw; appending to dst keeps dst.
		require.Same(t, &raw[len(raw)-1], &r.Payload[len(r.Payload)-1])
		require.Equal(t, append([]byte("prefix"), raw...), AppendRecord([]byte("prefix"), &e, p))
	}
}

// record builds a record from raw parts, for the error cases.
func record(rv, hv byte, typeLen []byte, typ string, payload []byte) []byte {
	b := []byte{rv, hv}
	b = append(b, make([]byte, 8+32+32)...)
	b = append(b, typeLen...)
	b = append(b, typ...)
	return append(b, payload...)
}

func TestDecodeRecordErrors(t *testing.T) {
	obj := []byte{0x08, 0x00}
	valid := record(1, 1, []byte{1}, "t", obj)
	_, err := DecodeRecord(valid)
	require.NoError(t, err)

	for name, raw := range map[string][]byte{
		"empty":              nil,
		"short":              valid[:recordFixedLen-1],
		"no type length":     valid[:recordFixedLen],
		"record version 0":   record(0, 1, []byte{1}, "t", obj),
		"record version 2":   record(2, 1, []byte{1}, "t", obj),
		"hash version 0":     record(1, 0, []byte{1}, "t", obj),
		"hash version 2":     record(1, 2, []byte{1}, "t", obj),
		"unterminated len":   record(1, 1, []byte{0x80}, "", nil),
		"overflowing len":    record(1, 1, bytes.Repeat([]byte{0xff}, 11), "", obj),
		"non-minimal len":    record(1, 1, []byte{0x81, 0x00}, "t", obj),
		"type past end":      record(1, 1, []byte{5}, "t", nil),
		"empty type":         record(1, 1, []byte{0}, "", obj),
		"type too long":      record(1, 1, binary.AppendUvarint(nil, MaxTypeLen+1), strings.Repeat("x", MaxTypeLen+1), obj),
		"type not UTF-8":     record(1, 1, []byte{1}, "\xff", obj),
		"no payload":         record(1, 1, []byte{1}, "t", nil),
		"payload not object": record(1, 1, []byte{1}, "t", []byte{0x03, 0, 0, 0, 0, 0, 0, 0, 1}),
	} {
		_, err := DecodeRecord(raw)
		require.ErrorIs(t, err, serr.ErrCorruption, name)
	}
}

func TestRecordEventErrors(t *testing.T) {
	for name, p := range map[string][]byte{
		"truncated":       {0x08, 0x01},
		"trailing bytes":  {0x08, 0x00, 0x00},
		"unsorted keys":   {0x08, 0x02, 0x01, 'b', 0x00, 0x01, 'a', 0x00},
		"not an object":   {0x00},
		"non-canonical 0": {0x08, 0x01, 0x01, 'f', 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0},
	} {
		raw := record(1, 1, []byte{1}, "t", p)
		r, err := DecodeRecord(raw)
		if err != nil { // the decoder's cheap check caught it
			require.ErrorIs(t, err, serr.ErrCorruption, name)
			continue
		}
		_, err = r.Event(3)
		require.ErrorIs(t, err, serr.ErrCorruption, name)
	}
	// A Record built by hand with a non-object payload.
	_, err := Record{Type: "t", Payload: []byte{0x00}}.Event(0)
	require.ErrorIs(t, err, serr.ErrCorruption)
}

func TestHeadRoundTrip(t *testing.T) {
	for _, h := range []Head{{}, {Len: 1, Hash: Hash{9}}, {Len: math.MaxUint64, Hash: Hash{31: 1}}} {
		raw := AppendHead(nil, h)
		require.Len(t, raw, 42)
		require.Equal(t, []byte{HeadVersion, HashVersion}, raw[:2])
		require.Equal(t, h.Len, binary.BigEndian.Uint64(raw[2:10]))
		require.Equal(t, h.Hash[:], raw[10:])
		got, err := DecodeHead(raw)
		require.NoError(t, err)
		require.Equal(t, h, got)
	}

	a, ok := Head{Len: 5, Hash: Hash{7}}.Anchor(runA)
	require.True(t, ok)
	require.Equal(t, Anchor{Run: runA, Sequence: 4, Hash: Hash{7}}, a)
	_, ok = Head{}.Anchor(runA)
	require.False(t, ok)
}

func TestDecodeHeadErrors(t *testing.T) {
	valid := AppendHead(nil, Head{Len: 3, Hash: Hash{1}})
	with := func(i int, b byte) []byte {
		c := bytes.Clone(valid)
		c[i] = b
		return c
	}
	for name, raw := range map[string][]byte{
		"empty":                nil,
		"short":                valid[:41],
		"long":                 append(bytes.Clone(valid), 0),
		"head version 0":       with(0, 0),
		"head version 2":       with(0, 2),
		"hash version 2":       with(1, 2),
		"empty with some hash": AppendHead(nil, Head{Hash: Hash{31: 1}}),
	} {
		_, err := DecodeHead(raw)
		require.ErrorIs(t, err, serr.ErrCorruption, name)
	}
}
