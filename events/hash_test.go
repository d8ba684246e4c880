package events

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/value"
)

func TestHashStringRoundTrip(t *testing.T) {
	var h Hash
	for i := range h {
		h[i] = byte(0xa0 + i)
	}
	s := h.String()
	require.Equal(t, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", s)
	got, err := ParseHash(s)
	require.NoError(t, err)
	require.Equal(t, h, got)

	got, err = ParseHash(strings.ToUpper(s))
	require.NoError(t, err)
	require.Equal(t, h, got)

	require.True(t, Hash{}.IsZero())
	require.False(t, h.IsZero())
}

func TestParseHashErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"00",
		strings.Repeat("0", 63),
		strings.Repeat("0", 65),
		strings.Repeat("0", 62) + "zz",
		strings.Repeat("0", 62) + " 0",
	} {
		_, err := ParseHash(s)
		require.ErrorIs(t, err, serr.ErrInvalidValue, "%q", s)
	}
}

// The payload's canonical encoding does not depend on how the object was
// built, so neither does the hash.
func TestComputeHashIgnoresInsertionOrder(t *testing.T) {
	fields := map[string]value.Value{
		"zeta":  value.Int(1),
		"alpha": value.String("a"),
		"mid":   value.Object(map[string]value.Value{"y": value.Null(), "x": value.Bool(true)}),
		"neg":   value.Float(math.Copysign(0, -1)), // negative zero
		"b":     value.Bytes([]byte{1, 2, 3}),
		"":      value.Array(),
	}
	keys := slices.Sorted(maps.Keys(fields))
	var want Hash
	for i := range 20 {
		order := slices.Clone(keys)
		rand.New(rand.NewPCG(uint64(i), 1)).Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		if i == 1 {
			slices.Reverse(order)
		}
		m := make(map[string]value.Value)
		for _, k := range order {
			m[k] = fields[k]
		}
		p := mustEncode(t, value.Object(m))
		h := ComputeHash(runA, 3, "t", 42, p, Hash{})
		if i == 0 {
			want = h
			continue
		}
		require.Equal(t, want, h, "order %v", order)
	}
	// -0 and +0 are one float.
	m := maps.Clone(fields)
	m["neg"] = value.Float(0)
	require.Equal(t, want, ComputeHash(runA, 3, "t", 42, mustEncode(t, value.Object(m)), Hash{}))
}

// Every field of the hash input changes the hash.
func TestComputeHashCoversEveryField(t *testing.T) {
	p := mustEncode(t, testEvent(0).Payload)
	prev := Hash{1}
	base := ComputeHash(runA, 5, "order.placed", 77, p, prev)
	require.Equal(t, base, ComputeHash(runA, 5, "order.placed", 77, bytes.Clone(p), prev), "deterministic")

	p2 := mustEncode(t, value.Object(map[string]value.Value{"amount": value.Int(1)}))
	for name, h := range map[string]Hash{
		"run":     ComputeHash(runB, 5, "order.placed", 77, p, prev),
		"seq":     ComputeHash(runA, 6, "order.placed", 77, p, prev),
		"type":    ComputeHash(runA, 5, "order.placed2", 77, p, prev),
		"ts":      ComputeHash(runA, 5, "order.placed", 78, p, prev),
		"payload": ComputeHash(runA, 5, "order.placed", 77, p2, prev),
		"prev":    ComputeHash(runA, 5, "order.placed", 77, p, Hash{2}),
	} {
		require.NotEqual(t, base, h, name)
	}
	// The length prefixes keep field boundaries apart: moving a byte from
	// the type into the payload gives another hash.
	require.NotEqual(t,
		ComputeHash(runA, 5, "ab", 77, []byte("c"), prev),
		ComputeHash(runA, 5, "a", 77, []byte("bc"), prev))
}

func TestComputeHashLongType(t *testing.T) {
	// A type longer than MaxTypeLen is not valid, but ComputeHash still
	// hashes it correctly (it only takes the slower path).
	long := strings.Repeat("x", 3*MaxTypeLen)
	require.NotEqual(t, ComputeHash(runA, 0, long, 0, nil, Hash{}), ComputeHash(runA, 0, long[1:], 0, nil, Hash{}))
	require.Equal(t, ComputeHash(runA, 0, long, 0, nil, Hash{}), ComputeHash(runA, 0, long, 0, nil, Hash{}))
}

func TestComputeHashDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	p := mustEncode(t, testEvent(0).Payload)
	typ := strings.Repeat("t", MaxTypeLen)
	var sink Hash
	n := testing.AllocsPerRun(100, func() { sink = ComputeHash(runA, 1, typ, 2, p, sink) })
	require.Zero(t, n)
}

func TestValidateType(t *testing.T) {
	for _, ok := range []string{"a", "order.placed", "héllo", strings.Repeat("x", MaxTypeLen), strings.Repeat("é", MaxTypeLen/2)} {
		require.NoError(t, ValidateType(ok), "%q", ok)
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxTypeLen+1), "\xff", "a\xc3"} {
		err := ValidateType(bad)
		require.ErrorIs(t, err, ErrInvalidEvent, "%q", bad)
		require.ErrorIs(t, err, serr.ErrInvalidValue, "%q", bad)
	}
}

func TestValidatePayload(t *testing.T) {
	require.NoError(t, ValidatePayload(value.Object(nil)))
	require.NoError(t, ValidatePayload(testEvent(0).Payload))
	for name, bad := range map[string]value.Value{
		"null":        value.Null(),
		"int":         value.Int(1),
		"array":       value.Array(value.Int(1)),
		"bytes":       value.Bytes([]byte("{}")),
		"nan":         value.Object(map[string]value.Value{"x": value.Float(nan())}),
		"bad key":     value.Object(map[string]value.Value{"\xff": value.Null()}),
		"bad string":  value.Object(map[string]value.Value{"k": value.String("\xfe")}),
		"deep object": deep(value.MaxDepth + 1),
	} {
		err := ValidatePayload(bad)
		require.ErrorIs(t, err, ErrInvalidEvent, name)
		require.ErrorIs(t, err, serr.ErrInvalidValue, name)
	}
	require.False(t, errors.Is(ValidatePayload(value.Int(1)), serr.ErrCorruption))
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func deep(n int) value.Value {
	v := value.Object(nil)
	for range n - 1 {
		v = value.Object(map[string]value.Value{"k": v})
	}
	return v
}

func BenchmarkComputeHash(b *testing.B) {
	e := testEvent(12345)
	p := mustEncode(b, e.Payload)
	size := len(Domain) + 4 + 1 + 16 + 8 + 4 + len(e.Type) + 8 + 4 + len(p) + 32
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var h Hash
	for b.Loop() {
		h = ComputeHash(runA, e.Sequence, e.Type, e.Timestamp, p, h)
	}
	b.ReportMetric(float64(size), "input-bytes")
}
