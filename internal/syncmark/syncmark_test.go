package syncmark

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/strata-db/strata/internal/serr"
	"github.com/stretchr/testify/require"
)

// syncMarkFile lays out slots 0 and 1 as a file holds them.
func syncMarkFile(slot0, slot1 []byte) []byte {
	b := make([]byte, slotStride, MaxFileLen)
	copy(b, slot0)
	if slot1 == nil {
		return b[:len(slot0)]
	}
	return append(b, slot1...)
}

func damaged(slot []byte) []byte {
	slot = append([]byte(nil), slot...)
	slot[10] ^= 0x40
	return slot
}

func TestDecode(t *testing.T) {
	newer := EncodeSlot(9)
	newer[4] = Version + 1
	binary.BigEndian.PutUint32(newer[16:], crc32.Checksum(newer[:16], castagnoli))
	reserved := EncodeSlot(9)
	reserved[6] = 1
	binary.BigEndian.PutUint32(reserved[16:], crc32.Checksum(reserved[:16], castagnoli))
	newerTorn := damaged(newer)
	for _, tc := range []struct {
		name    string
		file    []byte
		mark    uint64
		next    int
		corrupt bool
	}{
		{name: "empty file", file: nil, mark: 0, next: 0},
		{name: "zeros", file: make([]byte, MaxFileLen), mark: 0, next: 0},
		{name: "first write", file: syncMarkFile(EncodeSlot(3), nil), mark: 3, next: 1},
		{name: "second write", file: syncMarkFile(EncodeSlot(3), EncodeSlot(7)), mark: 7, next: 0},
		{name: "third write", file: syncMarkFile(EncodeSlot(9), EncodeSlot(7)), mark: 9, next: 1},
		{name: "torn first write", file: syncMarkFile(damaged(EncodeSlot(3)), nil), mark: 0, next: 0},
		{name: "torn first write, short", file: EncodeSlot(3)[:11], mark: 0, next: 0},
		{name: "torn second write", file: syncMarkFile(EncodeSlot(3), damaged(EncodeSlot(7))), mark: 3, next: 1},
		{name: "torn second write, short", file: syncMarkFile(EncodeSlot(3), EncodeSlot(7)[:5]), mark: 3, next: 1},
		{name: "torn third write", file: syncMarkFile(damaged(EncodeSlot(9)), EncodeSlot(7)), mark: 7, next: 0},
		{name: "both slots damaged", file: syncMarkFile(damaged(EncodeSlot(9)), damaged(EncodeSlot(7))), corrupt: true},
		{name: "newer format", file: syncMarkFile(newer, nil), corrupt: true},
		{name: "newer format beside a valid slot", file: syncMarkFile(newer, EncodeSlot(7)), corrupt: true},
		{name: "reserved bytes set beside a valid slot", file: syncMarkFile(reserved, EncodeSlot(7)), corrupt: true},
		{name: "newer format, torn: the checksum is checked first", file: syncMarkFile(newerTorn, EncodeSlot(7)), mark: 7, next: 0},
		{name: "file ending inside slot 1", file: syncMarkFile(EncodeSlot(9), EncodeSlot(7)[:12]), mark: 9, next: 1},
		{name: "too long", file: make([]byte, MaxFileLen+1), corrupt: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark, next, err := Decode(tc.file)
			if tc.corrupt {
				require.ErrorIs(t, err, serr.ErrCorruption)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.mark, mark)
			require.Equal(t, tc.next, next)
		})
	}
}

// FuzzDecode: any bytes decode to a mark or an error, never a
// panic; a mark other than 0 is held, encoded exactly, by the slot other
// than the one to write next.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add(syncMarkFile(EncodeSlot(1), nil))
	f.Add(syncMarkFile(EncodeSlot(3), EncodeSlot(7)))
	f.Add(syncMarkFile(damaged(EncodeSlot(3)), EncodeSlot(7)))
	f.Fuzz(func(t *testing.T, b []byte) {
		mark, next, err := Decode(b)
		if err != nil {
			require.ErrorIs(t, err, serr.ErrCorruption)
			return
		}
		require.Contains(t, []int{0, 1}, next)
		if mark == 0 {
			return
		}
		held := 1 - next
		lo := held * slotStride
		require.Equal(t, EncodeSlot(mark), b[lo:lo+slotLen])
	})
}
