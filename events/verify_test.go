package events

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/value"
)

func TestVerify(t *testing.T) {
	const n = 5
	valid := func(length uint64) Verification { return Verification{Valid: true, Length: length} }
	bad := func(seq uint64, r Reason) Verification { return Verification{Length: seq, FirstBad: seq, Reason: r} }
	anchorAt := func(s *store, seq uint64) *Anchor {
		return &Anchor{Run: s.run, Sequence: seq, Hash: s.events[seq].Hash}
	}
	// flip changes one byte of the record of event i, at offset off from
	// its start, or from its end when off is negative.
	flip := func(s *store, i, off int) {
		raw := s.entries[i].raw
		if off < 0 {
			off += len(raw)
		}
		raw[off] ^= 0x01
	}

	for _, tc := range []struct {
		name   string
		events int
		edit   func(t *testing.T, s *store) *Anchor // returns the anchor to verify against, if any
		want   Verification
	}{
		{name: "valid", events: n, want: valid(n)},
		{name: "valid single event", events: 1, want: valid(1)},
		{name: "empty without head", events: 0, edit: func(t *testing.T, s *store) *Anchor {
			s.head = nil
			return nil
		}, want: valid(0)},
		{name: "empty with head", events: 0, want: valid(0)},
		{name: "valid anchored at the end", events: n, edit: func(t *testing.T, s *store) *Anchor {
			a, _ := s.head.Anchor(s.run)
			return &a
		}, want: valid(n)},
		{name: "valid anchored at 0", events: n, edit: func(t *testing.T, s *store) *Anchor { return anchorAt(s, 0) }, want: valid(n)},

		// Faults found while walking the events.
		{name: "deleted event", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries = append(s.entries[:2], s.entries[3:]...)
			return nil
		}, want: bad(2, ReasonMissing)},
		{name: "deleted first event", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries = s.entries[1:]
			return nil
		}, want: bad(0, ReasonMissing)},
		{name: "truncated record", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries[3].raw = s.entries[3].raw[:40]
			return nil
		}, want: bad(3, ReasonCorrupt)},
		{name: "unknown record version", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries[1].raw[0] = 2
			return nil
		}, want: bad(1, ReasonCorrupt)},
		{name: "modified prev hash", events: n, edit: func(t *testing.T, s *store) *Anchor {
			flip(s, 3, 10)
			return nil
		}, want: bad(3, ReasonPrevHash)},
		{name: "non-zero prev hash of event 0", events: n, edit: func(t *testing.T, s *store) *Anchor {
			flip(s, 0, 41)
			return nil
		}, want: bad(0, ReasonPrevHash)},
		{name: "modified hash", events: n, edit: func(t *testing.T, s *store) *Anchor {
			flip(s, 2, 42) // also breaks event 3's link, which comes later
			return nil
		}, want: bad(2, ReasonHash)},
		{name: "modified timestamp", events: n, edit: func(t *testing.T, s *store) *Anchor {
			flip(s, 3, 9)
			return nil
		}, want: bad(3, ReasonHash)},
		{name: "modified type", events: n, edit: func(t *testing.T, s *store) *Anchor {
			flip(s, 3, 75) // "order.placed" becomes "nrder.placed"
			return nil
		}, want: bad(3, ReasonHash)},
		{name: "modified payload", events: n, edit: func(t *testing.T, s *store) *Anchor {
			flip(s, 4, -1)
			return nil
		}, want: bad(4, ReasonHash)},
		{name: "payload re-encoded non-canonically", events: n, edit: func(t *testing.T, s *store) *Anchor {
			// The same object with its key count as a non-minimal varint:
			// the hash is over the stored bytes, which changed.
			r, err := DecodeRecord(s.entries[1].raw)
			require.NoError(t, err)
			e := s.events[1]
			s.entries[1].raw = AppendRecord(nil, &e, append([]byte{0x08, 0x80 | r.Payload[1]&0x7f, 0x00}, r.Payload[2:]...))
			return nil
		}, want: bad(1, ReasonHash)},
		{name: "reordered pair", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries[2].raw, s.entries[3].raw = s.entries[3].raw, s.entries[2].raw
			return nil
		}, want: bad(2, ReasonPrevHash)},
		{name: "event 0 spliced from another run", events: n, edit: func(t *testing.T, s *store) *Anchor {
			other := buildStore(t, runB, 1)
			s.entries[0].raw = other.entries[0].raw // its prev hash is zero, as it should be
			return nil
		}, want: bad(0, ReasonHash)},
		{name: "whole chain copied from another run", events: n, edit: func(t *testing.T, s *store) *Anchor {
			other := buildStore(t, runB, n)
			s.entries, s.head = other.entries, other.head
			return nil
		}, want: bad(0, ReasonHash)},
		{name: "event spliced from another run with a matching prev hash", events: n, edit: func(t *testing.T, s *store) *Anchor {
			e := testEvent(3)
			e.Payload = value.Object(map[string]value.Value{"forged": value.Bool(true)})
			e.PrevHash = s.events[2].Hash
			s.entries[3].raw = seal(t, runB, &e) // sealed under the other run's id
			return nil
		}, want: bad(3, ReasonHash)},
		{name: "first fault wins", events: n, edit: func(t *testing.T, s *store) *Anchor {
			flip(s, 4, -1)
			s.entries[1].raw = s.entries[1].raw[:3]
			s.head = nil
			return &Anchor{Run: runB}
		}, want: bad(1, ReasonCorrupt)},

		// Faults found against the head.
		{name: "head missing", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.head = nil
			return nil
		}, want: bad(0, ReasonHeadMissing)},
		{name: "tail deleted, head kept", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries = s.entries[:3]
			return nil
		}, want: bad(3, ReasonMissing)},
		{name: "all events deleted, head kept", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries = nil
			return nil
		}, want: bad(0, ReasonMissing)},
		{name: "events beyond head", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.head = &Head{Len: 3, Hash: s.events[2].Hash}
			return nil
		}, want: bad(3, ReasonBeyondHead)},
		{name: "head hash mismatch", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.head.Hash[0] ^= 1
			return nil
		}, want: bad(n-1, ReasonHeadMismatch)},
		{name: "head with a stale hash", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.head.Hash = s.events[n-2].Hash
			return nil
		}, want: bad(n-1, ReasonHeadMismatch)},
		{name: "empty log with a non-zero head hash", events: 0, edit: func(t *testing.T, s *store) *Anchor {
			s.head = &Head{Hash: Hash{1}}
			return nil
		}, want: bad(0, ReasonHeadCorrupt)},

		// What only an anchor detects.
		{name: "tail truncated with head: undetectable without anchor", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.entries = s.entries[:3]
			s.head = &Head{Len: 3, Hash: s.events[2].Hash}
			return nil
		}, want: valid(3)},
		{name: "tail truncated with head, anchored", events: n, edit: func(t *testing.T, s *store) *Anchor {
			a := anchorAt(s, n-1)
			s.entries = s.entries[:3]
			s.head = &Head{Len: 3, Hash: s.events[2].Hash}
			return a
		}, want: bad(3, ReasonAnchorBeyondEnd)},
		{name: "everything deleted, anchored", events: n, edit: func(t *testing.T, s *store) *Anchor {
			a := anchorAt(s, 1)
			s.entries, s.head = nil, nil
			return a
		}, want: bad(0, ReasonAnchorBeyondEnd)},
		{name: "tail rewritten with recomputed hashes: undetectable without anchor", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.rewrite(t, 2, func(e *Event) { e.Type = "order.cancelled" })
			return nil
		}, want: valid(n)},
		{name: "tail rewritten with recomputed hashes, anchored at the end", events: n, edit: func(t *testing.T, s *store) *Anchor {
			a := anchorAt(s, n-1)
			s.rewrite(t, 2, func(e *Event) { e.Type = "order.cancelled" })
			return a
		}, want: bad(n-1, ReasonAnchorMismatch)},
		{name: "tail rewritten after the anchor", events: n, edit: func(t *testing.T, s *store) *Anchor {
			a := anchorAt(s, 1)
			s.rewrite(t, 2, func(e *Event) { e.Type = "order.cancelled" })
			return a
		}, want: valid(n)},
		{name: "anchor of another run", events: n, edit: func(t *testing.T, s *store) *Anchor {
			other := buildStore(t, runB, n)
			return anchorAt(other, 2)
		}, want: bad(0, ReasonAnchorRun)},
		{name: "head fault before anchor fault", events: n, edit: func(t *testing.T, s *store) *Anchor {
			s.head = nil
			return &Anchor{Run: runB}
		}, want: bad(0, ReasonHeadMissing)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildStore(t, runA, tc.events)
			var anchor *Anchor
			if tc.edit != nil {
				anchor = tc.edit(t, s)
			}
			got := s.verify(anchor)
			require.Equal(t, got.Valid, got.Detail == "", "a fault has a detail and a valid log none: %q", got.Detail)
			got.Detail = ""
			require.Equal(t, tc.want, got)
		})
	}
}

func TestVerifierAddStopsAtFirstFault(t *testing.T) {
	s := buildStore(t, runA, 4)
	v := NewVerifier(runA, nil)
	require.True(t, v.Add(0, s.entries[0].raw))
	require.False(t, v.Add(2, s.entries[2].raw)) // 1 is missing
	require.False(t, v.Add(1, s.entries[1].raw), "a fault is final")
	require.False(t, v.Add(3, s.entries[3].raw))
	got := v.Finish(s.head)
	require.Equal(t, ReasonMissing, got.Reason)
	require.Equal(t, uint64(1), got.FirstBad)
	require.Equal(t, got, v.Finish(nil), "Finish returns the same fault again")
}

func TestVerifierOutOfOrder(t *testing.T) {
	s := buildStore(t, runA, 3)
	v := NewVerifier(runA, nil)
	require.True(t, v.Add(0, s.entries[0].raw))
	require.True(t, v.Add(1, s.entries[1].raw))
	require.False(t, v.Add(1, s.entries[1].raw))
	got := v.Finish(s.head)
	require.Equal(t, ReasonCorrupt, got.Reason)
	require.Equal(t, uint64(1), got.FirstBad)
}

// AddCorrupt reports the event as corrupt, after the same sequence check as
// Add: a gap before it is still the first fault.
func TestVerifierAddCorrupt(t *testing.T) {
	s := buildStore(t, runA, 4)
	bad := errors.New("unknown value header version 2")

	v := NewVerifier(runA, nil)
	require.True(t, v.Add(0, s.entries[0].raw))
	require.True(t, v.Add(1, s.entries[1].raw))
	require.False(t, v.AddCorrupt(2, bad))
	require.False(t, v.Add(3, s.entries[3].raw), "a fault is final")
	got := v.Finish(s.head)
	require.Equal(t, Verification{Length: 2, FirstBad: 2, Reason: ReasonCorrupt, Detail: bad.Error()}, got)

	v = NewVerifier(runA, nil)
	require.True(t, v.Add(0, s.entries[0].raw))
	require.False(t, v.AddCorrupt(2, bad))
	got = v.Finish(s.head)
	require.Equal(t, ReasonMissing, got.Reason, "event 1 is missing before the corrupt event 2")
	require.Equal(t, uint64(1), got.FirstBad)

	v = NewVerifier(runA, nil)
	require.False(t, v.AddCorrupt(0, bad))
	require.Equal(t, ReasonCorrupt, v.FinishCorruptHead(bad).Reason, "the event fault wins over the head's")
}

func TestVerifierCorruptHead(t *testing.T) {
	s := buildStore(t, runA, 3)
	raw := AppendHead(nil, *s.head)
	raw[0] = 9
	_, err := DecodeHead(raw)
	require.Error(t, err)

	v := NewVerifier(runA, nil)
	for _, e := range s.entries {
		require.True(t, v.Add(e.seq, e.raw))
	}
	got := v.FinishCorruptHead(err)
	require.Equal(t, Verification{Reason: ReasonHeadCorrupt, Detail: got.Detail}, got)
	require.Contains(t, got.Detail, "version 9")

	// An event fault found before wins.
	v = NewVerifier(runA, nil)
	v.Add(0, s.entries[0].raw[:10])
	require.Equal(t, ReasonCorrupt, v.FinishCorruptHead(err).Reason)
}

func TestVerificationErr(t *testing.T) {
	require.NoError(t, Verification{Valid: true, Length: 3}.Err())

	s := buildStore(t, runA, 3)
	s.entries[2].raw[len(s.entries[2].raw)-1] ^= 1
	got := s.verify(nil)
	err := got.Err()
	require.ErrorIs(t, err, ErrChainInvalid)
	require.ErrorIs(t, err, serr.ErrCorruption)
	var ce *ChainError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, ChainError{Seq: 2, Reason: ReasonHash, Detail: got.Detail}, *ce)
	require.Contains(t, err.Error(), "sequence 2: hash mismatch: stored hash ")
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonNone; r <= ReasonAnchorMismatch; r++ {
		s := r.String()
		require.NotEmpty(t, s)
		require.NotContains(t, s, "reason(")
		require.False(t, seen[s], "duplicate name %q", s)
		seen[s] = true
	}
	require.Equal(t, "reason(200)", Reason(200).String())
}

func TestVerifierDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	s := buildStore(t, runA, 100)
	a, _ := s.head.Anchor(runA)
	n := testing.AllocsPerRun(10, func() {
		v := NewVerifier(runA, &a)
		for _, e := range s.entries {
			v.Add(e.seq, e.raw)
		}
		if !v.Finish(s.head).Valid {
			panic("invalid")
		}
	})
	require.LessOrEqual(t, n, 1.0, "only the Verifier itself may be allocated, not one thing per event")
}

func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s := buildStore(b, runA, n)
			var size int
			for _, e := range s.entries {
				size += len(e.raw)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				v := NewVerifier(runA, nil)
				for _, e := range s.entries {
					v.Add(e.seq, e.raw)
				}
				if !v.Finish(s.head).Valid {
					b.Fatal("invalid chain")
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
