package keyenc

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/strata-db/strata/internal/serr"
	"github.com/stretchr/testify/require"
)

var runA = RunID{0xA}
var runB = RunID{0xB}

func TestVersionOrderNewestFirst(t *testing.T) {
	bare := AppendPrefix(nil, runA, TagKV, []byte("k"))
	v1 := AppendVersioned(nil, runA, TagKV, []byte("k"), 1)
	v2 := AppendVersioned(nil, runA, TagKV, []byte("k"), 2)
	vmax := AppendVersioned(nil, runA, TagKV, []byte("k"), MaxVersion)
	keys := [][]byte{v1, vmax, bare, v2}
	slices.SortFunc(keys, Compare)
	require.Equal(t, [][]byte{bare, vmax, v2, v1}, keys)
}

func TestUserKeyOrderPreserved(t *testing.T) {
	// User keys containing 0x00 and 0xFF, and keys that are prefixes of
	// others, must keep bytewise order whatever their versions.
	users := [][]byte{{}, {0}, {0, 0}, {0, 1}, []byte("a"), []byte("a\x00"), []byte("a\x00b"), []byte("ab"), {0xFF}, {0xFF, 0xFF}}
	for i, a := range users {
		for j, b := range users {
			want := bytes.Compare(a, b)
			for _, va := range []uint64{1, 7, MaxVersion} {
				for _, vb := range []uint64{1, 7, MaxVersion} {
					ka := AppendVersioned(nil, runA, TagKV, a, va)
					kb := AppendVersioned(nil, runA, TagKV, b, vb)
					got := Compare(ka, kb)
					if want != 0 {
						require.Equal(t, want, got, "users %d %d", i, j)
					} else {
						require.Equal(t, -cmpU64(va, vb), got)
					}
				}
			}
		}
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestRunsAndTagsAreDisjoint(t *testing.T) {
	// Run A with key "\x00b" must never equal or interleave with run B's keys.
	ka := AppendVersioned(nil, runA, TagKV, []byte("\x00b"), 1)
	kb := AppendVersioned(nil, runB, TagKV, []byte("b"), 1)
	require.NotEqual(t, 0, Compare(ka, kb))
	lo, hi := TagBounds(runA, TagKV)
	require.True(t, Compare(lo, ka) <= 0 && Compare(ka, hi) < 0)
	require.False(t, Compare(lo, kb) <= 0 && Compare(kb, hi) < 0)
	ks := AppendVersioned(nil, runA, TagState, []byte("\x00b"), 1)
	require.False(t, Compare(lo, ks) <= 0 && Compare(ks, hi) < 0)
}

func TestPrefixBounds(t *testing.T) {
	inside := func(lo, hi, k []byte) bool { return Compare(lo, k) <= 0 && Compare(k, hi) < 0 }
	cases := []struct {
		prefix string
		in     []string
		out    []string
	}{
		{"ab", []string{"ab", "ab\x00", "abc", "ab\xff\xff"}, []string{"a", "aa", "ac", "b", "a\xff"}},
		{"a\xff", []string{"a\xff", "a\xff\xff"}, []string{"a", "b", "a\xfe"}},
		{"\xff\xff", []string{"\xff\xff", "\xff\xff\x00"}, []string{"\xff", "\xfe"}},
		{"", []string{"", "a", "\xff"}, nil},
	}
	for _, c := range cases {
		lo, hi := PrefixBounds(runA, TagKV, []byte(c.prefix))
		for _, k := range c.in {
			for _, v := range []uint64{1, MaxVersion} {
				require.True(t, inside(lo, hi, AppendVersioned(nil, runA, TagKV, []byte(k), v)), "%q in %q", k, c.prefix)
			}
		}
		for _, k := range c.out {
			require.False(t, inside(lo, hi, AppendVersioned(nil, runA, TagKV, []byte(k), 1)), "%q out of %q", k, c.prefix)
		}
		// Bounds are valid bare keys.
		require.NoError(t, ValidateKey(lo))
		require.NoError(t, ValidateKey(hi))
		require.Equal(t, len(lo), Split(lo))
	}
}

func TestDecodeDataKeyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var run RunID
		for i := range run {
			run[i] = byte(r.UintN(256))
		}
		uk := make([]byte, r.IntN(20))
		for i := range uk {
			uk[i] = byte(r.UintN(4)) // many 0x00 bytes
		}
		v := r.Uint64()
		k := AppendVersioned(nil, run, TagState, uk, v)
		d, err := DecodeDataKey(k)
		require.NoError(t, err)
		require.Equal(t, run, d.Run)
		require.Equal(t, TagState, d.Tag)
		require.Equal(t, uk, append([]byte{}, d.UserKey...))
		require.Equal(t, v, d.Version)
		require.Equal(t, v, Version(k))
		require.Equal(t, PrefixLen(len(uk)), Split(k))
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, k := range [][]byte{nil, {0x02}, {0x01, 'x', 0}, {0x02, 1, 2, 3, 0x09}} {
		_, err := DecodeDataKey(k)
		require.ErrorIs(t, err, serr.ErrCorruption)
	}
	// Well-shaped keys that Strata never writes: version 0 (it means
	// "absent"), the reserved tag 0xFF, a user key above the maximum.
	for name, k := range map[string][]byte{
		"version 0":      AppendVersioned(nil, runA, TagKV, []byte("k"), 0),
		"tag 0xff":       AppendVersioned(nil, runA, Tag(0xFF), []byte("k"), 1),
		"bare, tag 0xff": AppendPrefix(nil, runA, Tag(0xFF), []byte("k")),
		"long user key":  AppendVersioned(nil, runA, TagKV, make([]byte, MaxUserKeyLen+1), 1),
	} {
		_, err := DecodeDataKey(k)
		require.ErrorIs(t, err, serr.ErrCorruption, name)
	}
	// The limits themselves decode.
	for _, k := range [][]byte{
		AppendVersioned(nil, runA, TagKV, make([]byte, MaxUserKeyLen), 1),
		AppendVersioned(nil, runA, TagKV, []byte("k"), MaxVersion),
		AppendPrefix(nil, runA, TagKV, nil),
	} {
		_, err := DecodeDataKey(k)
		require.NoError(t, err)
	}
	require.Error(t, ValidateKey([]byte{1, 2, 3}))
	require.Error(t, ValidateKey(nil))
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, kind := range []Kind{KindTombstone, KindBytes, KindValue} {
		b := AppendHeader(nil, kind, -42)
		if kind != KindTombstone {
			b = append(b, "payload"...)
		}
		h, p, err := DecodeHeader(b)
		require.NoError(t, err)
		require.Equal(t, kind, h.Kind)
		require.Equal(t, int64(-42), h.Timestamp)
		if kind != KindTombstone {
			require.Equal(t, "payload", string(p))
		}
	}
	_, _, err := DecodeHeader([]byte{1, 1})
	require.ErrorIs(t, err, serr.ErrCorruption)
	_, _, err = DecodeHeader(append(AppendHeader(nil, KindTombstone, 0), 'x'))
	require.ErrorIs(t, err, serr.ErrCorruption)
	bad := AppendHeader(nil, KindBytes, 0)
	bad[0] = 9
	_, _, err = DecodeHeader(bad)
	require.True(t, errors.Is(err, serr.ErrCorruption))
}

func TestFormatRecord(t *testing.T) {
	v, err := DecodeFormat(EncodeFormat())
	require.NoError(t, err)
	require.Equal(t, FormatVersion, v)
	_, err = DecodeFormat([]byte("PEBB\x00\x00\x00\x01"))
	require.ErrorIs(t, err, serr.ErrCorruption)
}

func FuzzDecodeDataKey(f *testing.F) {
	f.Add(AppendVersioned(nil, runA, TagKV, []byte("k\x00"), 5))
	f.Add(AppendPrefix(nil, runB, TagEvent, nil))
	f.Add([]byte{0x02, 0x09})
	f.Fuzz(func(t *testing.T, k []byte) {
		d, err := DecodeDataKey(k)
		if err != nil {
			return
		}
		// A key that decodes is one Strata could write (or seek with) ...
		if d.Tag == 0xFF || len(d.UserKey) > MaxUserKeyLen || (Split(k) < len(k) && d.Version == 0) {
			t.Fatalf("decoded %x as %+v", k, d)
		}
		// ... and re-encodes to itself.
		var re []byte
		if Split(k) == len(k) {
			re = AppendPrefix(nil, d.Run, d.Tag, d.UserKey)
		} else {
			re = AppendVersioned(nil, d.Run, d.Tag, d.UserKey, d.Version)
		}
		if !bytes.Equal(re, k) {
			t.Fatalf("re-encoded %x as %x", k, re)
		}
	})
}

// compareBySplit is Compare's definition: prefixes bytewise, then
// suffixes.
func compareBySplit(a, b []byte) int {
	ap, bp := Split(a), Split(b)
	if c := bytes.Compare(a[:ap], b[:bp]); c != 0 {
		return c
	}
	return CompareSuffixes(a[ap:], b[bp:])
}

func FuzzCompare(f *testing.F) {
	f.Add([]byte("\x02runrunrunrunrunr\x01a\x00\x00\x00\x00\x00\x00\x00\x00\x07\x09"), []byte("\x02runrunrunrunrunr\x01a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x09"))
	f.Add([]byte("a\x00"), []byte("a\x00\x00\x00\x00\x00\x00\x00\x00\x01\x09"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		// Compare never panics, is antisymmetric, and agrees with the
		// abbreviated key.
		c1, c2 := Compare(a, b), Compare(b, a)
		if c1 != -c2 {
			t.Fatalf("Compare not antisymmetric: %d %d", c1, c2)
		}
		if ref := compareBySplit(a, b); c1 != ref {
			t.Fatalf("Compare(%x, %x) = %d, by split prefixes %d", a, b, c1, ref)
		}
		aa, ab := AbbreviatedKey(a), AbbreviatedKey(b)
		if aa < ab && c1 >= 0 || aa > ab && c1 <= 0 {
			t.Fatalf("abbreviated key disagrees with Compare")
		}
		_ = ValidateKey(a)
	})
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(AppendHeader(nil, KindValue, 1))
	f.Add(AppendHeader(nil, KindTombstone, 1))
	f.Fuzz(func(t *testing.T, v []byte) {
		h, p, err := DecodeHeader(v)
		if err != nil {
			return
		}
		re := append(AppendHeader(nil, h.Kind, h.Timestamp), p...)
		if !bytes.Equal(re, v) {
			t.Fatalf("header round trip %x -> %x", v, re)
		}
	})
}

func TestSeparatorAndSuccessor(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randKey := func() []byte {
		uk := make([]byte, r.IntN(6))
		for i := range uk {
			uk[i] = []byte{0, 1, 0xFE, 0xFF, 'a', 'b'}[r.IntN(6)]
		}
		if r.IntN(4) == 0 {
			return AppendPrefix(nil, runA, TagKV, uk)
		}
		return AppendVersioned(nil, runA, TagKV, uk, r.Uint64N(5))
	}
	shortened := 0
	for range 20000 {
		a, b := randKey(), randKey()
		if Compare(a, b) > 0 {
			a, b = b, a
		}
		s := Separator(nil, a, b)
		require.NoError(t, ValidateKey(s))
		require.LessOrEqual(t, Compare(a, s), 0, "a=%x s=%x", a, s)
		if Compare(a, b) < 0 {
			require.Less(t, Compare(s, b), 0, "a=%x b=%x s=%x", a, b, s)
		}
		if len(s) < len(a) {
			shortened++
		}
		u := Successor(nil, a)
		require.NoError(t, ValidateKey(u))
		require.LessOrEqual(t, Compare(a, u), 0, "a=%x u=%x", a, u)
	}
	require.Greater(t, shortened, 1000, "separators are usually shorter")
	// Random 16-byte user keys shorten to a few bytes past the header.
	a := AppendVersioned(nil, runA, TagKV, []byte("\x10abcdefghijklmno"), 7)
	b := AppendVersioned(nil, runA, TagKV, []byte("\x30abcdefghijklmno"), 7)
	require.Equal(t, AppendPrefix(nil, runA, TagKV, []byte{0x11}), Separator(nil, a, b))
}

func FuzzSeparator(f *testing.F) {
	f.Add([]byte("a\x00"), []byte("b\x00"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if ValidateKey(a) != nil || ValidateKey(b) != nil || Compare(a, b) >= 0 {
			return
		}
		s := Separator(nil, a, b)
		if Compare(a, s) > 0 || Compare(s, b) >= 0 || ValidateKey(s) != nil {
			t.Fatalf("Separator(%x, %x) = %x", a, b, s)
		}
		u := Successor(nil, a)
		if Compare(a, u) > 0 || ValidateKey(u) != nil {
			t.Fatalf("Successor(%x) = %x", a, u)
		}
	})
}

func FuzzDecodeSystemRecords(f *testing.F) {
	f.Add(EncodeFormat())
	f.Add(EncodeUint64(42))
	f.Fuzz(func(t *testing.T, v []byte) {
		if ver, err := DecodeFormat(v); err == nil {
			if ver == FormatVersion && !bytes.Equal(v, EncodeFormat()) {
				t.Fatalf("format record %x decodes as the current format", v)
			}
		}
		if n, err := DecodeUint64(v); err == nil && !bytes.Equal(EncodeUint64(n), v) {
			t.Fatalf("counter record %x round-trips as %d", v, n)
		}
	})
}
