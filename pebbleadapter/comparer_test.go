package pebbleadapter_test

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

// Runs, tags and user keys chosen to stress the layout: run ids made of 0x00
// and 0xFF bytes, user keys that are empty, contain or end in the 0x00
// sentinel, end in the 0x09 suffix marker, or are all 0xFF.
var (
	testRuns = []keyenc.RunID{
		{},
		{0x01},
		func() (r keyenc.RunID) {
			for i := range r {
				r[i] = 0xFF
			}
			return r
		}(),
	}
	testTags     = []keyenc.Tag{keyenc.TagKV, keyenc.TagState, 0xFE}
	testUserKeys = [][]byte{
		nil,
		{0x00},
		{0x00, 0x00},
		[]byte("a"),
		[]byte("a\x00"),
		[]byte("a\x00b"),
		[]byte("a\x09"),
		[]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x01\x09"), // looks like a suffix
		{0xFF},
		{0xFF, 0xFF, 0x00},
	}
	testVersions = []uint64{1, 2, 0xFF, 0x100, 1 << 40, keyenc.MaxVersion - 1, keyenc.MaxVersion}
)

// comparerPrefixes is the full cross product of runs, tags and user keys,
// plus the system keys.
func comparerPrefixes() [][]byte {
	var prefixes [][]byte
	for _, run := range testRuns {
		for _, tag := range testTags {
			for _, uk := range testUserKeys {
				prefixes = append(prefixes, keyenc.AppendPrefix(nil, run, tag, uk))
			}
		}
	}
	// System keys are bare keys of the same comparer.
	prefixes = append(prefixes,
		keyenc.SystemKey(keyenc.SysFormat),
		keyenc.SystemKey(keyenc.SysLastVersion))
	return prefixes
}

// checkPrefixes is a smaller set for pebble.CheckComparer, which also checks
// every tail of every prefix and compares all pairs of keys (quadratic): every
// user key under one run and tag, and every run and every tag once.
func checkPrefixes() [][]byte {
	var prefixes [][]byte
	for _, uk := range testUserKeys {
		prefixes = append(prefixes, keyenc.AppendPrefix(nil, testRuns[1], keyenc.TagKV, uk))
	}
	for i, run := range testRuns {
		prefixes = append(prefixes, keyenc.AppendPrefix(nil, run, testTags[i], []byte{0x00, 0xFF}))
	}
	return append(prefixes,
		keyenc.SystemKey(keyenc.SysFormat),
		keyenc.SystemKey(keyenc.SysLastVersion))
}

func comparerSuffixes() [][]byte {
	var suffixes [][]byte
	for _, v := range testVersions {
		suffixes = append(suffixes, keyenc.AppendSuffix(nil, v))
	}
	return suffixes
}

// The comparer satisfies every invariant Pebble checks: Split finds the
// prefix of prefix+suffix (for every tail of every prefix too), suffixes order
// consistently, Compare agrees with bytewise prefix order and with suffix
// order, and Equal agrees with Compare.
func TestComparerPassesPebbleCheck(t *testing.T) {
	t.Parallel()
	require.NoError(t, pebble.CheckComparer(pebbleadapter.Comparer, checkPrefixes(), comparerSuffixes()))
}

func TestComparerName(t *testing.T) {
	require.Equal(t, pebbleadapter.ComparerName, pebbleadapter.Comparer.Name)
	require.NotEqual(t, pebble.DefaultComparer.Name, pebbleadapter.Comparer.Name)
}

// ImmediateSuccessor of a prefix is greater than every key of that prefix,
// versioned or bare, and no greater than the bare key of any later prefix.
func TestComparerImmediateSuccessor(t *testing.T) {
	c := pebbleadapter.Comparer
	prefixes := comparerPrefixes()
	for _, p := range prefixes {
		succ := c.ImmediateSuccessor(nil, p)
		require.Equal(t, len(succ), c.Split(succ), "the successor of %x is a bare key", p)
		require.NoError(t, c.ValidateKey.Validate(succ))
		require.Less(t, c.Compare(p, succ), 0)
		for _, v := range testVersions {
			k := keyenc.AppendSuffix(append([]byte(nil), p...), v)
			require.Less(t, c.Compare(k, succ), 0, "%x@%d < succ", p, v)
		}
		for _, q := range prefixes {
			if c.Compare(p, q) < 0 {
				require.LessOrEqual(t, c.Compare(succ, q), 0, "succ(%x) <= %x", p, q)
			}
		}
	}
}

// Separator(a, b) for a < b returns s with a <= s < b, and Successor(a)
// returns s >= a; both must be valid keys (Pebble stores them in index
// blocks and seeks with them). Checked for every ordered pair of keys built
// from the realistic prefixes, bare and versioned.
func TestComparerSeparatorAndSuccessor(t *testing.T) {
	c := pebbleadapter.Comparer
	var keys [][]byte
	for _, p := range comparerPrefixes() {
		keys = append(keys, p)
		for _, v := range []uint64{1, 0x100, keyenc.MaxVersion} {
			keys = append(keys, keyenc.AppendSuffix(append([]byte(nil), p...), v))
		}
	}
	// A second run of adjacent user keys that differ in a late byte.
	for _, uk := range []string{"abc", "abd", "abd\x00", "abe", "ab\xff", "ab\xff\xff", "ac"} {
		keys = append(keys, keyenc.AppendVersioned(nil, testRuns[1], keyenc.TagKV, []byte(uk), 5))
	}
	for _, a := range keys {
		succ := c.Successor([]byte("dst"), a)[3:]
		if err := c.ValidateKey.Validate(succ); err != nil {
			t.Fatalf("Successor(%s) = %x is not a valid key: %v", c.FormatKey(a), succ, err)
		}
		if c.Compare(succ, a) < 0 {
			t.Fatalf("Successor(%s) = %s is below its input", c.FormatKey(a), c.FormatKey(succ))
		}
		for _, b := range keys {
			if c.Compare(a, b) >= 0 {
				continue
			}
			sep := c.Separator([]byte("dst"), a, b)[3:] // appends to dst
			if err := c.ValidateKey.Validate(sep); err != nil {
				t.Fatalf("Separator(%s, %s) = %x is not a valid key: %v", c.FormatKey(a), c.FormatKey(b), sep, err)
			}
			if c.Compare(a, sep) > 0 || c.Compare(sep, b) >= 0 {
				t.Fatalf("Separator(%s, %s) = %s is outside [a, b)", c.FormatKey(a), c.FormatKey(b), c.FormatKey(sep))
			}
		}
	}
}

func TestComparerFormatKey(t *testing.T) {
	c := pebbleadapter.Comparer
	k := keyenc.AppendVersioned(nil, keyenc.RunID{0xAB}, keyenc.TagKV, []byte("user"), 42)
	s := fmt.Sprint(c.FormatKey(k))
	require.Contains(t, s, "ab000000")
	require.Contains(t, s, `key="user"@42`)

	bare := keyenc.AppendPrefix(nil, keyenc.RunID{0xAB}, keyenc.TagKV, []byte("user"))
	require.NotContains(t, fmt.Sprint(c.FormatKey(bare)), "@")

	// A system key is not a data key: it is printed quoted.
	require.Contains(t, fmt.Sprint(c.FormatKey(keyenc.SystemKey(keyenc.SysFormat))), "format")
}

func TestComparerValidateKeyRejectsForeignKeys(t *testing.T) {
	c := pebbleadapter.Comparer
	for _, k := range [][]byte{nil, []byte("plain"), {0x02, 0x01}} {
		require.Error(t, c.ValidateKey.Validate(k), "%q", k)
	}
}

// The check above is meaningful: a comparer whose suffix order disagrees
// with its key order is caught by the same prefixes and suffixes.
func TestComparerCheckCatchesMismatchedSuffixOrder(t *testing.T) {
	broken := *pebbleadapter.Comparer
	broken.ComparePointSuffixes = func(a, b []byte) int { return -keyenc.CompareSuffixes(a, b) }
	broken.CompareRangeSuffixes = func(a, b []byte) int { return -keyenc.CompareSuffixes(a, b) }
	require.Error(t, pebble.CheckComparer(&broken, checkPrefixes(), comparerSuffixes()))
}
