package keyenc

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/strata-db/strata/internal/serr"
)

// Key spaces: the first byte of every key.
const (
	// SpaceSystem holds database-wide records (format marker, version
	// high-water mark). System keys are bare: they carry no version.
	SpaceSystem byte = 0x01
	// SpaceData holds run-scoped, versioned records.
	SpaceData byte = 0x02
)

// Tag names the primitive a data key belongs to. KV key "status" and state
// cell "status" differ in their tag, so they never collide. The value 0xFF is
// reserved so that every tag has a successor.
type Tag byte

// Primitive tags. This version of Strata writes TagKV, TagEvent, TagState
// and TagRunMeta; TagJSON is reserved for the JSON documents that follow, so
// that the numbers never change.
const (
	TagKV      Tag = 0x01
	TagEvent   Tag = 0x02
	TagState   Tag = 0x03
	TagJSON    Tag = 0x04
	TagRunMeta Tag = 0x05
)

// Sizes of the fixed parts of a key.
const (
	// RunIDLen is the size of a run id in a key: a UUID's 16 bytes.
	RunIDLen = 16
	// SuffixLen is the size of a version suffix: 8 version bytes and the
	// length byte.
	SuffixLen = 9
	// dataHeaderLen is space + run + tag.
	dataHeaderLen = 1 + RunIDLen + 1
	// MaxUserKeyLen is the largest user key Strata accepts, in bytes.
	MaxUserKeyLen = 4096
	// MaxVersion is the largest commit version; a seek at MaxVersion finds
	// the newest version of a key.
	MaxVersion = ^uint64(0)
)

const (
	sentinel     = 0x00
	suffixMarker = SuffixLen // the trailing length byte of a versioned key
)

// RunID is the 16-byte run identifier as it appears in keys.
type RunID = [RunIDLen]byte

// AppendPrefix appends the bare key (the Split prefix) of (run, tag, userKey)
// to dst. The user key is copied raw: Split finds the prefix from the end, so
// no escaping is needed.
func AppendPrefix(dst []byte, run RunID, tag Tag, userKey []byte) []byte {
	dst = append(dst, SpaceData)
	dst = append(dst, run[:]...)
	dst = append(dst, byte(tag))
	dst = append(dst, userKey...)
	return append(dst, sentinel)
}

// AppendSuffix appends the version suffix for version v to dst.
func AppendSuffix(dst []byte, v uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, v)
	return append(dst, suffixMarker)
}

// AppendVersioned appends the key of (run, tag, userKey) at version v.
func AppendVersioned(dst []byte, run RunID, tag Tag, userKey []byte, v uint64) []byte {
	return AppendSuffix(AppendPrefix(dst, run, tag, userKey), v)
}

// PrefixLen returns the length of the bare key that AppendPrefix builds for a
// user key of length n.
func PrefixLen(n int) int { return dataHeaderLen + n + 1 }

// Split returns the length of k's prefix: everything but the version suffix.
// It never panics; a key of unknown shape is treated as all prefix (ValidateKey
// rejects it).
func Split(k []byte) int {
	n := len(k)
	if n >= SuffixLen+1 && k[n-1] == suffixMarker && k[n-SuffixLen-1] == sentinel {
		return n - SuffixLen
	}
	return n
}

// Version returns the version in k's suffix, or 0 for a bare key.
func Version(k []byte) uint64 {
	p := Split(k)
	if p == len(k) {
		return 0
	}
	return binary.BigEndian.Uint64(k[p : p+8])
}

// CompareSuffixes orders version suffixes: the empty suffix first, then
// versions from newest to oldest.
func CompareSuffixes(a, b []byte) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return -1
	case len(b) == 0:
		return 1
	}
	// Both suffixes are big-endian versions (plus the same length byte), so
	// bytewise order is version order; newest first reverses it.
	return bytes.Compare(b, a)
}

// Compare orders two keys: by prefix bytewise, then by CompareSuffixes.
func Compare(a, b []byte) int {
	// A prefix is at least a key's length minus a suffix, so the first n
	// bytes below lie in both prefixes: if they differ, they decide, and the
	// keys' ends (where Split looks) need not be read. In a memtable's
	// skiplist that saves a cache miss on most comparisons.
	if n := min(len(a), len(b)) - SuffixLen; n > 0 {
		if c := bytes.Compare(a[:n], b[:n]); c != 0 {
			return c
		}
	}
	ap, bp := Split(a), Split(b)
	if c := bytes.Compare(a[:ap], b[:bp]); c != 0 {
		return c
	}
	return CompareSuffixes(a[ap:], b[bp:])
}

// Equal reports whether two keys are identical under Compare.
func Equal(a, b []byte) bool { return bytes.Equal(a, b) }

// AbbreviatedKey returns the first 8 bytes of k's prefix as a big-endian
// integer, zero padded. It agrees with Compare: a strictly smaller abbreviation
// implies a strictly smaller key.
func AbbreviatedKey(k []byte) uint64 {
	p := k[:Split(k)]
	var buf [8]byte
	copy(buf[:], p)
	return binary.BigEndian.Uint64(buf[:])
}

// ValidateKey reports whether k has the shape of a Strata key: a bare key
// ending in the 0x00 sentinel, or a prefix followed by a version suffix.
func ValidateKey(k []byte) error {
	n := len(k)
	switch {
	case n == 0:
		return fmt.Errorf("%w: empty key", serr.ErrCorruption)
	case k[n-1] == sentinel:
		return nil
	case Split(k) == n-SuffixLen:
		return nil
	default:
		return fmt.Errorf("%w: key %x has no valid suffix", serr.ErrCorruption, k)
	}
}

// ImmediateSuccessor appends to dst the smallest prefix greater than the
// prefix a: a with one more 0x00 byte, which is itself a valid bare key.
func ImmediateSuccessor(dst, a []byte) []byte {
	return append(append(dst, a...), sentinel)
}

// DataKey is a decoded data key. UserKey aliases the input.
type DataKey struct {
	Run     RunID
	Tag     Tag
	UserKey []byte
	Version uint64 // 0 for a bare key
}

// DecodeDataKey splits a data key into its parts. It returns ErrCorruption
// for anything that is not a well-formed data key: a key outside the data
// space, one without the sentinel, a tag of 0xFF (reserved), a user key
// longer than MaxUserKeyLen, or a versioned key of version 0 (which means
// "absent" and is never written). A bare key decodes with Version 0.
func DecodeDataKey(k []byte) (DataKey, error) {
	var d DataKey
	p := Split(k)
	if p < dataHeaderLen+1 || k[0] != SpaceData || k[p-1] != sentinel {
		return d, fmt.Errorf("%w: malformed data key %x", serr.ErrCorruption, k)
	}
	d.Tag = Tag(k[1+RunIDLen])
	d.UserKey = k[dataHeaderLen : p-1]
	if p < len(k) {
		d.Version = binary.BigEndian.Uint64(k[p : p+8])
	}
	switch {
	case d.Tag == 0xFF:
		return DataKey{}, fmt.Errorf("%w: data key %x has the reserved tag 0xff", serr.ErrCorruption, k)
	case len(d.UserKey) > MaxUserKeyLen:
		return DataKey{}, fmt.Errorf("%w: data key of a %d-byte user key, above the maximum of %d", serr.ErrCorruption, len(d.UserKey), MaxUserKeyLen)
	case p < len(k) && d.Version == 0:
		return DataKey{}, fmt.Errorf("%w: versioned data key %x of version 0", serr.ErrCorruption, k)
	}
	copy(d.Run[:], k[1:1+RunIDLen])
	return d, nil
}

// TagBounds returns the iterator bounds [lower, upper) that cover every key
// of (run, tag). Both are valid bare keys.
func TagBounds(run RunID, tag Tag) (lower, upper []byte) {
	lower = AppendPrefix(nil, run, tag, nil)
	upper = successorTagPrefix(run, tag)
	return lower, upper
}

// PrefixBounds returns the iterator bounds [lower, upper) that cover every
// key of (run, tag) whose user key starts with userPrefix. An empty prefix
// covers the whole tag.
func PrefixBounds(run RunID, tag Tag, userPrefix []byte) (lower, upper []byte) {
	lower = AppendPrefix(nil, run, tag, userPrefix)
	succ := prefixSuccessor(userPrefix)
	if succ == nil {
		return lower, successorTagPrefix(run, tag)
	}
	return lower, AppendPrefix(nil, run, tag, succ)
}

// successorTagPrefix is the first bare key after every key of (run, tag).
// Tags stop below 0xFF, so tag+1 never overflows; the run bytes are untouched.
func successorTagPrefix(run RunID, tag Tag) []byte {
	return AppendPrefix(nil, run, tag+1, nil)
}

// prefixSuccessor returns the shortest byte string greater than every string
// with prefix p, or nil if there is none (p empty or all 0xFF).
func prefixSuccessor(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xFF {
			s := append([]byte(nil), p[:i+1]...)
			s[i]++
			return s
		}
	}
	return nil
}

// SystemKey returns the bare key of the system record with the given name.
func SystemKey(name string) []byte {
	k := make([]byte, 0, len(name)+2)
	k = append(k, SpaceSystem)
	k = append(k, name...)
	return append(k, sentinel)
}

// Names of system records.
const (
	// SysFormat holds the store's format marker (see format.go).
	SysFormat = "format"
	// SysLastVersion holds the version reservation: every version ever
	// applied is at or below it (see mvcc.VersionBlock).
	SysLastVersion = "last-version"
	// SysSyncMark holds the counter of sync barriers, which Open compares
	// with the sync mark file (see pebbleadapter.SyncMarkFileName).
	SysSyncMark = "sync-mark"
)

// body returns the prefix of k without its 0x00 sentinel, and false if k does
// not end its prefix with the sentinel.
func body(k []byte) ([]byte, bool) {
	p := Split(k)
	if p == 0 || k[p-1] != sentinel {
		return nil, false
	}
	return k[:p-1], true
}

// Separator appends to dst a key s with a <= s < b, shorter than a when
// possible, for Pebble's index blocks. Shortening happens on the prefix
// bodies; the result is always a valid bare key (or a itself). Shorter
// separators keep index blocks small.
func Separator(dst, a, b []byte) []byte {
	ua, okA := body(a)
	ub, okB := body(b)
	if !okA || !okB {
		return append(dst, a...)
	}
	n := min(len(ua), len(ub))
	i := 0
	for i < n && ua[i] == ub[i] {
		i++
	}
	if i == len(ua) || i == len(ub) || ua[i] > ub[i] {
		// Equal bodies, one a prefix of the other, or a > b (not expected):
		// nothing shorter is safe.
		return append(dst, a...)
	}
	// ua[i] < ub[i]. Incrementing ua[i] works when it stays below ub[i];
	// otherwise increment the first later byte of ua that is not 0xFF.
	j := i
	if ua[i]+1 >= ub[i] {
		for j = i + 1; j < len(ua) && ua[j] == 0xFF; j++ {
		}
		if j >= len(ua) {
			return append(dst, a...)
		}
	}
	if j+2 >= len(a) {
		return append(dst, a...) // not shorter
	}
	start := len(dst)
	dst = append(dst, ua[:j+1]...)
	dst[start+j]++
	return append(dst, sentinel)
}

// Successor appends to dst a short key s >= a: a's prefix body cut after
// its first byte that is not 0xFF, that byte incremented, as a bare key.
func Successor(dst, a []byte) []byte {
	ua, ok := body(a)
	if !ok {
		return append(dst, a...)
	}
	for j := range ua {
		if ua[j] != 0xFF {
			if j+2 >= len(a) {
				break
			}
			start := len(dst)
			dst = append(dst, ua[:j+1]...)
			dst[start+j]++
			return append(dst, sentinel)
		}
	}
	return append(dst, a...)
}
