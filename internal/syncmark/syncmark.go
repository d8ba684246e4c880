// Package syncmark encodes and decodes the sync mark file, which records
// the last sync barrier known to be durable in a Strata store (see
// pebbleadapter's syncmark.go and docs/format.md). It is pure: it never
// touches a file.
package syncmark

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/strata-db/strata/internal/serr"
)

// FileName is the name of the sync mark file in a store's directory.
const FileName = "STRATA-SYNCMARK"

// The sync mark file has two slots, each in its own 512-byte sector, written
// alternately: a torn write damages only the slot it was writing, and the
// other still holds the previous mark. A slot is
//
//	bytes 0-3    magic "SMRK"
//	byte  4      format version (1)
//	bytes 5-7    zero
//	bytes 8-15   mark, big-endian uint64
//	bytes 16-19  CRC-32C (Castagnoli) of bytes 0-15, big-endian
//
// and a slot of all zero bytes, or past the end of the file, is empty.
const (
	magic      = "SMRK"
	Version    = 1
	slotLen    = 20
	slotStride = 512

	// MaxFileLen is the length of a file whose both slots are written.
	MaxFileLen = slotStride + slotLen
)

// SlotOffset returns the offset in the file of slot i (0 or 1).
func SlotOffset(i int) int64 { return int64(i * slotStride) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeSlot returns a slot holding mark, to write at SlotOffset of the
// slot to write next.
func EncodeSlot(mark uint64) []byte {
	b := make([]byte, slotLen)
	copy(b, magic)
	b[4] = Version
	binary.BigEndian.PutUint64(b[8:16], mark)
	binary.BigEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
	return b
}

type slotState uint8

const (
	slotEmpty slotState = iota
	slotValid
	slotDamaged
)

// decodeSlot decodes one slot. A slot with a valid checksum but another
// format version, or reserved bytes (5-7) that are not zero, is an error:
// it was written by a format this code does not know, so its mark cannot
// be read. (The checksum is checked first: a slot that fails it is torn,
// whatever its version byte says.)
func decodeSlot(b []byte) (uint64, slotState, error) {
	if len(b) == 0 || bytes.Count(b, []byte{0}) == len(b) {
		return 0, slotEmpty, nil
	}
	if len(b) < slotLen || string(b[:4]) != magic ||
		binary.BigEndian.Uint32(b[16:20]) != crc32.Checksum(b[:16], castagnoli) {
		return 0, slotDamaged, nil
	}
	if b[4] != Version {
		return 0, slotDamaged, fmt.Errorf("%w: %s: sync mark format %d, this Strata reads format %d",
			serr.ErrCorruption, FileName, b[4], Version)
	}
	if b[5]|b[6]|b[7] != 0 {
		return 0, slotDamaged, fmt.Errorf("%w: %s: a slot of format %d whose reserved bytes 5-7 are %x, not zero",
			serr.ErrCorruption, FileName, Version, b[5:8])
	}
	return binary.BigEndian.Uint64(b[8:16]), slotValid, nil
}

// Decode decodes the contents of a sync mark file: the larger
// mark of its two slots, and which slot to write next (the other one).
// One damaged slot is what a torn write leaves, and reads as the other
// slot's mark; two damaged slots, or a file longer than the format, are
// ErrCorruption.
func Decode(b []byte) (mark uint64, next int, err error) {
	if len(b) > MaxFileLen {
		return 0, 0, fmt.Errorf("%w: %s of %d bytes, longer than %d", serr.ErrCorruption, FileName, len(b), MaxFileLen)
	}
	var marks [2]uint64
	var states [2]slotState
	for i := range 2 {
		lo := min(i*slotStride, len(b))
		hi := min(lo+slotLen, len(b))
		marks[i], states[i], err = decodeSlot(b[lo:hi])
		if err != nil {
			return 0, 0, err
		}
	}
	switch {
	case states[0] == slotDamaged && states[1] == slotDamaged:
		return 0, 0, fmt.Errorf("%w: %s: both slots are damaged", serr.ErrCorruption, FileName)
	case states[1] == slotValid && (states[0] != slotValid || marks[1] > marks[0]):
		return marks[1], 0, nil
	case states[0] == slotValid:
		return marks[0], 1, nil
	}
	return 0, 0, nil // empty, or one torn first write: no mark yet
}
