package events

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-db/strata/internal/serr"
)

func FuzzDecodeRecord(f *testing.F) {
	s := buildStore(f, runA, 2)
	for _, e := range s.entries {
		f.Add(e.raw)
		f.Add(e.raw[:recordFixedLen+3])
	}
	g, err := hex.DecodeString("010117979cfe3d85cd15000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f1a510e2c58d313502a0d41c2b4bd18e41c05bae0b620fc9ea675347573f723860c6f726465722e706c61636564080000")
	require.NoError(f, err)
	f.Add(g)
	f.Add(record(1, 1, []byte{0x81, 0x00}, "t", []byte{0x08, 0x00}))
	f.Add(record(1, 1, []byte{1}, "t", []byte{0x08, 0x01, 0x01, 'a', 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := bytes.Clone(raw)
		r, err := DecodeRecord(raw)
		require.Equal(t, orig, raw, "DecodeRecord must not modify its input")
		if err != nil {
			require.ErrorIs(t, err, serr.ErrCorruption)
			return
		}
		require.NoError(t, ValidateType(r.Type))
		require.Equal(t, uint8(HashVersion), r.HashVersion)
		e := Event{Type: r.Type, Timestamp: r.Timestamp, PrevHash: r.PrevHash, Hash: r.Hash}
		require.Equal(t, raw, AppendRecord(nil, &e, r.Payload), "re-encoding gives the same bytes")

		ev, err := r.Event(9)
		if err != nil {
			require.ErrorIs(t, err, serr.ErrCorruption)
			return
		}
		require.NoError(t, ValidatePayload(ev.Payload))
		p := mustEncode(t, ev.Payload)
		require.Equal(t, r.Payload, p, "a payload that decodes is canonical")
	})
}

func FuzzDecodeHead(f *testing.F) {
	f.Add(AppendHead(nil, Head{}))
	f.Add(AppendHead(nil, Head{Len: 8, Hash: Hash{1, 2, 3}}))
	f.Add(AppendHead(nil, Head{Len: 1 << 63}))
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := DecodeHead(raw)
		if err != nil {
			require.ErrorIs(t, err, serr.ErrCorruption)
			return
		}
		require.Equal(t, raw, AppendHead(nil, h), "re-encoding gives the same bytes")
		if h.Len == 0 {
			require.True(t, h.Hash.IsZero(), "an empty log's head has a zero hash")
		}
	})
}

func FuzzParseHash(f *testing.F) {
	f.Add(strings.Repeat("0", 64))
	f.Add("1a510e2c58d313502a0d41c2b4bd18e41c05bae0b620fc9ea675347573f72386")
	f.Add("1A510E2C58D313502A0D41C2B4BD18E41C05BAE0B620FC9EA675347573F72386")
	f.Add("xyz")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err != nil {
			require.ErrorIs(t, err, serr.ErrInvalidValue)
			return
		}
		require.Equal(t, strings.ToLower(s), h.String())
	})
}

// FuzzVerifier feeds arbitrary records and heads to a verifier after a valid
// prefix: it never panics, and it reports a fault exactly when one exists.
func FuzzVerifier(f *testing.F) {
	s := buildStore(f, runA, 3)
	head := AppendHead(nil, *s.head)
	f.Add(uint64(2), s.entries[2].raw, head)
	f.Add(uint64(2), s.entries[1].raw, head)
	f.Add(uint64(3), s.entries[2].raw, head)
	f.Add(uint64(2), s.entries[2].raw[:50], head[:30])
	f.Fuzz(func(t *testing.T, seq uint64, raw, headRaw []byte) {
		v := NewVerifier(runA, nil)
		require.True(t, v.Add(0, s.entries[0].raw))
		require.True(t, v.Add(1, s.entries[1].raw))
		added := v.Add(seq, raw)

		var got Verification
		h, err := DecodeHead(headRaw)
		if err != nil {
			got = v.FinishCorruptHead(err)
		} else {
			got = v.Finish(&h)
		}
		if got.Valid {
			require.True(t, added)
			require.Equal(t, uint64(3), got.Length)
			require.Equal(t, s.entries[2].raw[:74], raw[:74], "a valid third event has the stored hashes")
			require.NoError(t, got.Err())
			return
		}
		require.Equal(t, got.FirstBad, got.Length)
		require.LessOrEqual(t, got.FirstBad, uint64(3))
		require.NotEqual(t, ReasonNone, got.Reason)
		require.True(t, errors.Is(got.Err(), ErrChainInvalid))
	})
}
