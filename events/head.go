package events

import "encoding/binary"

// HeadVersion is the version of the stored head record, its first byte.
const HeadVersion = 1

// headLen is the length of a head record.
const headLen = 1 + 1 + 8 + 32

// Head is a run's event-log head: the number of events and the hash of the
// last one. The engine overwrites it with every append, in the same
// transaction as the event.
type Head struct {
	// Len is the number of events, so the next sequence.
	Len uint64
	// Hash is the hash of event Len-1, or 32 zero bytes when Len is 0.
	Hash Hash
}

// Anchor returns the anchor of the head's last event in run run, and false
// when the log is empty.
func (h Head) Anchor(run [16]byte) (Anchor, bool) {
	if h.Len == 0 {
		return Anchor{}, false
	}
	return Anchor{Run: run, Sequence: h.Len - 1, Hash: h.Hash}, true
}

// AppendHead appends the stored head record of h to dst and returns the
// extended slice. The record is 42 bytes, with integers big-endian:
//
//	byte 0        HeadVersion (1)
//	byte 1        HashVersion (1)
//	bytes 2-9     length (the next sequence), u64
//	bytes 10-41   hash of event length-1 (zero when the length is 0)
func AppendHead(dst []byte, h Head) []byte {
	dst = append(dst, HeadVersion, HashVersion)
	dst = binary.BigEndian.AppendUint64(dst, h.Len)
	return append(dst, h.Hash[:]...)
}

// DecodeHead parses a stored head record. Anything but exactly 42 bytes, an
// unknown head or hash version, or a length of 0 with a non-zero hash returns
// an error matching strata.ErrCorruption.
func DecodeHead(raw []byte) (Head, error) {
	if len(raw) != headLen {
		return Head{}, corruptf("event head is %d bytes, not %d", len(raw), headLen)
	}
	if raw[0] != HeadVersion {
		return Head{}, corruptf("event head version %d, want %d", raw[0], HeadVersion)
	}
	if raw[1] != HashVersion {
		return Head{}, corruptf("event head hash version %d, want %d", raw[1], HashVersion)
	}
	h := Head{Len: binary.BigEndian.Uint64(raw[2:10])}
	copy(h.Hash[:], raw[10:])
	if h.Len == 0 && !h.Hash.IsZero() {
		return Head{}, corruptf("event head of length 0 has a non-zero hash")
	}
	return h, nil
}
