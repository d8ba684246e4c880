package value

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/strata-db/strata/internal/serr"
	"github.com/stretchr/testify/require"
)

func sample() []Value {
	return []Value{
		Null(), Bool(false), Bool(true), Int(0), Int(-1), Int(math.MaxInt64), Int(math.MinInt64),
		Float(1.5), Float(-2e300), Float(math.SmallestNonzeroFloat64),
		String(""), String("héllo"), Bytes(nil), Bytes([]byte{0, 0xFF}),
		Array(), Array(Int(1), String("x"), Null()),
		Object(map[string]Value{}),
		Object(map[string]Value{"b": Int(2), "a": Array(Bool(true)), "": Null()}),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, v := range sample() {
		b, err := Encode(v)
		require.NoError(t, err)
		got, err := Decode(b)
		require.NoError(t, err, "%v", v)
		require.True(t, Equal(v, got), "%v != %v", v, got)
		require.Equal(t, v.Kind(), got.Kind())
	}
}

func TestNilBytesIsNotNull(t *testing.T) {
	v, err := Decode(must(Encode(Bytes(nil))))
	require.NoError(t, err)
	require.Equal(t, KindBytes, v.Kind())
	require.False(t, Equal(Bytes(nil), Null()))
}

func TestObjectEncodingIsCanonical(t *testing.T) {
	a := map[string]Value{}
	b := map[string]Value{}
	keys := []string{"zeta", "alpha", "mid", "a", "ab"}
	for i, k := range keys {
		a[k] = Int(int64(i))
	}
	for i := len(keys) - 1; i >= 0; i-- {
		b[keys[i]] = Int(int64(i))
	}
	for range 20 { // map iteration order is random; the encoding is not
		require.Equal(t, must(Encode(Object(a))), must(Encode(Object(b))))
	}
	require.Equal(t, must(Encode(Float(0))), must(Encode(Float(math.Copysign(0, -1)))))
}

func TestValidateRejects(t *testing.T) {
	deep := Int(1)
	for range MaxDepth + 1 {
		deep = Array(deep)
	}
	ok := Int(1)
	for range MaxDepth {
		ok = Array(ok)
	}
	for name, v := range map[string]Value{
		"nan":        Float(math.NaN()),
		"inf":        Float(math.Inf(1)),
		"-inf":       Array(Float(math.Inf(-1))),
		"utf8":       String("\xff"),
		"key utf8":   Object(map[string]Value{"\xfe": Null()}),
		"too deep":   deep,
		"nested nan": Object(map[string]Value{"x": Float(math.NaN())}),
	} {
		_, err := Encode(v)
		require.ErrorIs(t, err, serr.ErrInvalidValue, name)
	}
	_, err := Encode(ok)
	require.NoError(t, err)
}

func TestDecodeRejects(t *testing.T) {
	nan := append([]byte{tagFloat}, 0x7F, 0xF8, 0, 0, 0, 0, 0, 1)
	for name, b := range map[string][]byte{
		"empty":       {},
		"trailing":    {tagNull, tagNull},
		"unknown":     {0x42},
		"short int":   {tagInt, 1},
		"nan":         nan,
		"neg zero":    {tagFloat, 0x80, 0, 0, 0, 0, 0, 0, 0},
		"long string": {tagString, 5, 'a'},
		"huge array":  {tagArray, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F},
		"bad utf8":    {tagString, 1, 0xFF},
		"unsorted":    {tagObject, 2, 1, 'b', tagNull, 1, 'a', tagNull},
		"duplicate":   {tagObject, 2, 1, 'a', tagNull, 1, 'a', tagNull},
		"nonminimal":  {tagString, 0x81, 0x00},
	} {
		_, err := Decode(b)
		require.ErrorIs(t, err, serr.ErrCorruption, name)
	}
}

func TestString(t *testing.T) {
	v := Object(map[string]Value{"b": Bytes([]byte{1}), "a": Array(Int(1), Float(0.5), String("x"), Null(), Bool(true))})
	require.Equal(t, `{"a":[1,0.5,"x",null,true],"b":b"01"}`, v.String())
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	for _, v := range sample() {
		f.Add(must(Encode(v)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		// Only canonical encodings decode, so re-encoding gives b back.
		re, err := Encode(v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("non-canonical input accepted: %x -> %x", b, re)
		}
		requireSizedExactly(t, v, b)
	})
}

// requireSizedExactly checks that AppendLimit's walk measures v's encoding
// enc exactly: a limit of its length takes it, one byte less refuses it.
func requireSizedExactly(t *testing.T, v Value, enc []byte) {
	t.Helper()
	got, err := AppendLimit([]byte("x"), v, len(enc))
	require.NoError(t, err)
	require.Equal(t, append([]byte("x"), enc...), got)
	got, err = AppendLimit([]byte("x"), v, len(enc)-1)
	require.ErrorIs(t, err, serr.ErrInvalidValue)
	require.Equal(t, []byte("x"), got, "a refusal appends nothing")
}

func TestAppendLimitMeasuresExactly(t *testing.T) {
	long := String(strings.Repeat("é", 100)) // a two-byte length
	big := Bytes(make([]byte, 1<<14))        // a three-byte length
	wide := make([]Value, 200)
	for i := range wide {
		wide[i] = Int(int64(i))
	}
	for _, v := range append(sample(), long, big, Array(wide...),
		Object(map[string]Value{strings.Repeat("k", 300): big, "n": Array(long, Null())})) {
		requireSizedExactly(t, v, must(Encode(v)))
	}
}

// A value may use one element many times: nested 60 deep, value.Array(v, v)
// encodes to 2^60 copies of v. A limit refuses it after walking about
// limit elements, where encoding or validating it would never end.
func TestAppendLimitRefusesSharedElementsEarly(t *testing.T) {
	v := Int(1)
	for range 60 {
		v = Array(v, v)
	}
	_, err := AppendLimit(nil, v, 1<<20)
	require.ErrorIs(t, err, serr.ErrInvalidValue)
	require.ErrorContains(t, err, "exceeds the maximum of 1048576 bytes")

	// Wide sharing too: 256 uses of a 1 MiB element are refused after 2.
	leaf := Bytes(make([]byte, 1<<20))
	wide := make([]Value, 256)
	for i := range wide {
		wide[i] = leaf
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = AppendLimit(nil, Array(wide...), 1<<20)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, serr.ErrInvalidValue)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "a refusal encodes nothing")
}

// Values share their arguments, so a program can build one that contains
// itself. Validate and every write refuse it (too deep), but String and
// Equal recursed without end into a stack overflow, a fatal error that no
// recover stops (a black-box audit, 2026-11-28). They stop at MaxDepth, and
// String's text is bounded also for a value whose shared elements stand
// for more text than memory holds.
func TestSelfContainingAndHugeSharedValues(t *testing.T) {
	a := []Value{Int(1)}
	v := Array(a...)
	a[0] = v
	require.ErrorIs(t, v.Validate(), serr.ErrInvalidValue)
	s := v.String()
	require.True(t, strings.HasPrefix(s, strings.Repeat("[", MaxDepth)+"..."+"]"), s)
	require.False(t, Equal(v, v))
	m := map[string]Value{}
	o := Object(m)
	m["self"] = o
	require.Contains(t, o.String(), "...")
	require.False(t, Equal(o, o))

	deep := Int(7) // exactly MaxDepth levels: valid, printed and compared whole
	for range MaxDepth {
		deep = Array(deep)
	}
	require.NoError(t, deep.Validate())
	require.Equal(t, strings.Repeat("[", MaxDepth)+"7"+strings.Repeat("]", MaxDepth), deep.String())
	require.True(t, Equal(deep, deep))

	huge := String("x") // 2^60 copies of "x" in 60 levels
	for range 60 {
		huge = Array(huge, huge)
	}
	s = huge.String()
	require.Less(t, len(s), maxStringLen+1024)
	require.Contains(t, s, "...")

	wide := map[string]Value{} // past the limit, no more keys are written
	for i := range 200_000 {
		wide[fmt.Sprintf("key%07d", i)] = Int(int64(i))
	}
	s = Object(wide).String()
	require.Less(t, len(s), maxStringLen+1024)
	require.True(t, strings.HasSuffix(s, "...}"), s[len(s)-20:])
}
