package events

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-db/strata/value"
)

var (
	runA = [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x41, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	runB = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x41, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
)

func mustEncode(tb testing.TB, v value.Value) []byte {
	tb.Helper()
	b, err := value.Encode(v)
	require.NoError(tb, err)
	return b
}

// seal sets e.Hash from its fields, the way the engine does at append time,
// and returns the stored record.
func seal(tb testing.TB, run [16]byte, e *Event) []byte {
	tb.Helper()
	require.NoError(tb, ValidateType(e.Type))
	require.NoError(tb, ValidatePayload(e.Payload))
	p := mustEncode(tb, e.Payload)
	e.Hash = ComputeHash(run, e.Sequence, e.Type, e.Timestamp, p, e.PrevHash)
	return AppendRecord(nil, e, p)
}

// entry is one stored event: the sequence from its key and its record.
type entry struct {
	seq uint64
	raw []byte
}

// store is what verification reads for one run: its events in key order
// and its head.
type store struct {
	run     [16]byte
	entries []entry
	events  []Event
	head    *Head
}

// testEvent returns the event at seq of the test chains.
func testEvent(seq uint64) Event {
	return Event{
		Sequence:  seq,
		Type:      "order.placed",
		Timestamp: 1_700_000_000_000_000_000 + int64(seq)*1_000,
		Payload: value.Object(map[string]value.Value{
			"amount":   value.Int(1000 + int64(seq)),
			"customer": value.String("alice"),
			"ratio":    value.Float(0.25),
			"tags":     value.Array(value.String("new"), value.String("vip")),
		}),
	}
}

// buildStore appends n events to run's log, as the engine would.
func buildStore(tb testing.TB, run [16]byte, n int) *store {
	tb.Helper()
	s := &store{run: run, head: &Head{}}
	for i := range n {
		e := testEvent(uint64(i))
		e.PrevHash = s.head.Hash
		raw := seal(tb, run, &e)
		s.entries = append(s.entries, entry{seq: e.Sequence, raw: raw})
		s.events = append(s.events, e)
		s.head = &Head{Len: e.Sequence + 1, Hash: e.Hash}
	}
	return s
}

// rewrite replaces the event at index i and re-seals every event after it
// and the head, as an attacker with write access would.
func (s *store) rewrite(tb testing.TB, i int, edit func(*Event)) {
	tb.Helper()
	edit(&s.events[i])
	for j := i; j < len(s.events); j++ {
		e := &s.events[j]
		if j > 0 {
			e.PrevHash = s.events[j-1].Hash
		}
		s.entries[j].raw = seal(tb, s.run, e)
	}
	last := s.events[len(s.events)-1]
	s.head = &Head{Len: last.Sequence + 1, Hash: last.Hash}
}

func (s *store) verify(anchor *Anchor) Verification {
	v := NewVerifier(s.run, anchor)
	for _, e := range s.entries {
		if !v.Add(e.seq, e.raw) {
			break
		}
	}
	return v.Finish(s.head)
}
