// Package keyenc owns every byte layout that Strata hands to Pebble: data
// keys, seek keys and iterator bounds, the MVCC version suffix, the value
// header, and the Pebble Comparer that orders them.
//
// Nothing else in Strata builds a Pebble key by hand. Pebble requires every
// byte string it is given, seek keys and bounds included, to be a valid
// encoding under its Comparer; building them all here keeps that true.
//
// # Key layout (format version 1)
//
// A data key is a prefix followed by an optional version suffix:
//
//	prefix  = space(1) | run(16) | tag(1) | user key (raw bytes) | 0x00
//	suffix  = version (8 bytes, big-endian) | 0x09
//
// The last byte of every key says how long its suffix is: 0x00 for a bare key
// (the sentinel doubles as "no suffix"), 0x09 for a versioned key. Split reads
// it to find the prefix, so the user key may contain any byte, 0x00 included,
// without escaping. Appending the 0x00 sentinel preserves bytewise order of
// user keys, so prefix order equals (space, run, tag, user key) order.
//
// Keys with the same prefix order by version, newest first, and the bare key
// sorts before every version. A read at snapshot S is one SeekPrefixGE to
// prefix@S, which lands on the newest version <= S.
//
// System keys use space SpaceSystem and carry a name instead of run and tag:
//
//	system key = 0x01 | name | 0x00
//
// See docs/format.md for the whole layout, byte by byte.
package keyenc
