package strata

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func FuzzDecodeRetention(f *testing.F) {
	for _, r := range []Retention{KeepAll(), KeepLast(1), KeepLast(3), KeepLast(1 << 62), KeepFor(time.Nanosecond), KeepFor(time.Hour), KeepFor(math.MaxInt64)} {
		f.Add(appendRetention(nil, r))
	}
	f.Add([]byte{retentionRecordVersion, byte(RetainLast), 0, 0, 0, 0, 0, 0, 0, 0})    // Last 0
	f.Add([]byte{retentionRecordVersion, byte(RetainLast), 0x80, 0, 0, 0, 0, 0, 0, 0}) // Last above the largest int
	f.Add([]byte{retentionRecordVersion, byte(RetainFor), 0x80, 0, 0, 0, 0, 0, 0, 0})  // negative For
	f.Add([]byte{retentionRecordVersion, byte(RetainAll), 0, 0, 0, 0, 0, 0, 0, 1})     // All with a parameter
	f.Add([]byte{retentionRecordVersion, 3, 0, 0, 0, 0, 0, 0, 0, 1})                   // unknown mode
	f.Add([]byte{2, byte(RetainLast), 0, 0, 0, 0, 0, 0, 0, 1})                         // unknown record version
	f.Add([]byte{retentionRecordVersion, byte(RetainLast), 0, 0, 0, 0, 0, 0, 0, 1, 0}) // too long
	f.Add([]byte{retentionRecordVersion, byte(RetainLast), 0, 0, 0, 0, 0, 0, 1})       // too short
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := bytes.Clone(raw)
		r, err := decodeRetention(raw)
		require.Equal(t, orig, raw, "decodeRetention must not modify its input")
		if err != nil {
			require.ErrorIs(t, err, ErrCorruption)
			require.Equal(t, Retention{}, r)
			return
		}
		require.NoError(t, r.Validate(), "a decoded policy is valid")
		require.Equal(t, raw, appendRetention(nil, r), "re-encoding gives the same bytes")
	})
}

func FuzzDecodeHorizon(f *testing.F) {
	for _, h := range []uint64{0, 1, 1 << 32, math.MaxUint64} {
		f.Add(appendHorizon(nil, h))
	}
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 1})                       // unknown record version
	f.Add([]byte{horizonRecordVersion, 0, 0, 0, 0, 0, 0, 0, 1, 0}) // too long
	f.Add([]byte{horizonRecordVersion, 0, 0, 0, 0, 0, 0, 1})       // too short
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := bytes.Clone(raw)
		h, err := decodeHorizon(raw)
		require.Equal(t, orig, raw, "decodeHorizon must not modify its input")
		if err != nil {
			require.ErrorIs(t, err, ErrCorruption)
			require.Zero(t, h)
			return
		}
		require.Equal(t, raw, appendHorizon(nil, h), "re-encoding gives the same bytes")
	})
}
