package events

import (
	"fmt"
	"strconv"

	"github.com/google/uuid"
)

// Anchor pins one event of one run: its sequence and hash. The engine
// exports it; the user keeps it outside the database, where whoever can
// rewrite the database cannot rewrite it, and verifies against it later.
// Since every hash covers its predecessor's, an anchor vouches for the whole
// chain up to its sequence.
type Anchor struct {
	Run      [16]byte
	Sequence uint64
	Hash     Hash
}

// Reason says why a verification failed.
type Reason uint8

// The reasons, in the order the Verifier checks them for each event and then
// for the head and the anchor.
const (
	// ReasonNone: the chain is valid.
	ReasonNone Reason = iota
	// ReasonMissing: an event is absent, either a gap in the stored
	// sequences or a tail shorter than the head records.
	ReasonMissing
	// ReasonCorrupt: an event record does not decode.
	ReasonCorrupt
	// ReasonPrevHash: an event's stored previous hash is not the stored hash
	// of the event before it (32 zero bytes for sequence 0).
	ReasonPrevHash
	// ReasonHash: an event's stored hash is not the hash recomputed from its
	// stored fields.
	ReasonHash
	// ReasonBeyondHead: events are stored past the length the head records.
	ReasonBeyondHead
	// ReasonHeadMismatch: the head's hash is not the last event's stored
	// hash.
	ReasonHeadMismatch
	// ReasonHeadMissing: events are stored but the head record is absent.
	ReasonHeadMissing
	// ReasonHeadCorrupt: the head record does not decode.
	ReasonHeadCorrupt
	// ReasonAnchorRun: the anchor belongs to another run.
	ReasonAnchorRun
	// ReasonAnchorBeyondEnd: the log ends before the anchored sequence: it
	// was truncated.
	ReasonAnchorBeyondEnd
	// ReasonAnchorMismatch: the stored hash at the anchored sequence is not
	// the anchor's: the chain up to it was rewritten.
	ReasonAnchorMismatch
)

var reasonNames = [...]string{
	ReasonNone:            "none",
	ReasonMissing:         "missing event",
	ReasonCorrupt:         "corrupt record",
	ReasonPrevHash:        "previous hash mismatch",
	ReasonHash:            "hash mismatch",
	ReasonBeyondHead:      "event beyond head",
	ReasonHeadMismatch:    "head mismatch",
	ReasonHeadMissing:     "head missing",
	ReasonHeadCorrupt:     "head corrupt",
	ReasonAnchorRun:       "anchor from another run",
	ReasonAnchorBeyondEnd: "anchor beyond end",
	ReasonAnchorMismatch:  "anchor mismatch",
}

// String returns the reason in a few words.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Verification is the result of verifying a run's event log.
type Verification struct {
	// Valid reports whether the whole log verified.
	Valid bool
	// Length is the verified prefix: events 0 to Length-1 checked good.
	// When Valid it is the number of events; otherwise it equals FirstBad.
	Length uint64
	// FirstBad is the first bad sequence, when not Valid. For
	// ReasonAnchorMismatch it is the anchored sequence: the divergence is
	// there or before it.
	FirstBad uint64
	// Reason says why the log is not valid; ReasonNone when it is.
	Reason Reason
	// Detail explains the fault to a person.
	Detail string
}

// Err returns nil for a valid log, else a *ChainError matching
// ErrChainInvalid and strata.ErrCorruption.
func (v Verification) Err() error {
	if v.Valid {
		return nil
	}
	return &ChainError{Seq: v.FirstBad, Reason: v.Reason, Detail: v.Detail}
}

// Verifier checks one run's event log as it is read, in key order, without
// holding more than the previous hash: its memory does not grow with the
// log, and Add does not allocate.
//
// # Use
//
// Create it with the run id and, optionally, an anchor kept outside the
// database. Feed every stored event of the run to Add in ascending sequence
// order (or to AddCorrupt, for an event whose stored value could not be read
// as a record), stopping early once they return false. Then read the run's
// head record and call Finish with it (nil if the record is absent), or
// FinishCorruptHead if it does not decode. Read the events and the head from
// one snapshot.
//
// # Checks
//
// The first fault wins. For each event, in order: a sequence past the
// expected one is ReasonMissing at the expected sequence; a record that does
// not decode is ReasonCorrupt; a stored previous hash that is not the
// previous event's stored hash (zero for sequence 0) is ReasonPrevHash; a
// stored hash that is not ComputeHash over the stored fields, the key's
// sequence and the verifier's run is ReasonHash. Then the head, then the
// anchor: see Finish.
//
// The payload is hashed as stored, not decoded: Record.Event decodes it.
type Verifier struct {
	run       [16]byte
	anchor    Anchor
	hasAnchor bool

	next     uint64 // the expected sequence: events 0 to next-1 checked good
	prev     Hash   // stored hash of event next-1, zero while next is 0
	anchored Hash   // stored hash of event anchor.Sequence, once checked

	failed bool
	fault  Verification

	buf [hashHeaderCap]byte
}

// NewVerifier returns a Verifier for the events of run run. anchor may be
// nil; it is copied.
func NewVerifier(run [16]byte, anchor *Anchor) *Verifier {
	v := &Verifier{run: run}
	if anchor != nil {
		v.anchor, v.hasAnchor = *anchor, true
	}
	return v
}

// Add checks the stored event at sequence seq (decoded from its key) with
// record raw. Sequences must be given in ascending order; a repeated or
// decreasing one is reported as ReasonCorrupt. Add returns false once a
// fault was found; later calls do nothing and return false. raw is not
// retained.
func (v *Verifier) Add(seq uint64, raw []byte) bool {
	if !v.expect(seq) {
		return false
	}
	r, err := decodeRecord(raw)
	if err != nil {
		return v.fail(seq, ReasonCorrupt, "%v", err)
	}
	if r.prev != v.prev {
		if seq == 0 {
			return v.fail(seq, ReasonPrevHash, "stored previous hash %v, want 32 zero bytes for event 0", r.prev)
		}
		return v.fail(seq, ReasonPrevHash, "stored previous hash %v, but event %d has hash %v", r.prev, seq-1, v.prev)
	}
	if h := computeHash(&v.buf, v.run, seq, r.typ, r.ts, r.payload, r.prev); h != r.hash {
		return v.fail(seq, ReasonHash, "stored hash %v, recomputed %v", r.hash, h)
	}
	if v.hasAnchor && seq == v.anchor.Sequence {
		v.anchored = r.hash
	}
	v.prev = r.hash
	v.next++
	return true
}

// AddCorrupt reports that the stored event at sequence seq could not be
// read as a record at all: the storage layer failed to decode what it
// stored under the event's key (its value header, say), so there are no
// record bytes to give Add. The sequence is checked as Add checks it (a gap
// before seq is still ReasonMissing); then seq is ReasonCorrupt, with err as
// the detail. It returns false.
func (v *Verifier) AddCorrupt(seq uint64, err error) bool {
	if !v.expect(seq) {
		return false
	}
	return v.fail(seq, ReasonCorrupt, "%v", err)
}

// expect checks that seq is the next sequence to verify, recording the
// fault if it is not.
func (v *Verifier) expect(seq uint64) bool {
	if v.failed {
		return false
	}
	if seq != v.next {
		if seq > v.next {
			return v.fail(v.next, ReasonMissing, "event %d is missing: the next stored event is %d", v.next, seq)
		}
		return v.fail(seq, ReasonCorrupt, "event %d given after event %d", seq, v.next-1)
	}
	return true
}

// Finish completes the verification with the run's decoded head record, or
// nil when the run has no head record, and returns the result. If Add found
// a fault, that fault is the result. Otherwise, with n the number of events
// added:
//
//   - no head and n > 0 is ReasonHeadMissing at 0 (no head and no events is
//     an empty, valid log);
//   - head.Len > n is ReasonMissing at n: the tail was deleted but the head
//     was not;
//   - head.Len < n is ReasonBeyondHead at head.Len;
//   - head.Hash other than the last event's stored hash is
//     ReasonHeadMismatch at n-1 (ReasonHeadCorrupt at 0 for an empty log
//     whose head hash is not zero);
//
// then, with an anchor:
//
//   - an anchor of another run is ReasonAnchorRun at 0;
//   - anchor.Sequence >= n is ReasonAnchorBeyondEnd at n: the log was
//     truncated;
//   - a stored hash at anchor.Sequence other than anchor.Hash is
//     ReasonAnchorMismatch at anchor.Sequence: the chain was rewritten.
func (v *Verifier) Finish(head *Head) Verification {
	if v.failed {
		return v.fault
	}
	n := v.next
	switch {
	case head == nil:
		if n > 0 {
			v.fail(0, ReasonHeadMissing, "%d events are stored but the head record is absent", n)
		}
	case head.Len > n:
		v.fail(n, ReasonMissing, "the head records %d events but only %d are stored", head.Len, n)
	case head.Len < n:
		v.fail(head.Len, ReasonBeyondHead, "the head records %d events but %d are stored", head.Len, n)
	case head.Hash != v.prev:
		if n == 0 {
			v.fail(0, ReasonHeadCorrupt, "the head of an empty log has the non-zero hash %v", head.Hash)
		} else {
			v.fail(n-1, ReasonHeadMismatch, "the head records hash %v for event %d, which has hash %v", head.Hash, n-1, v.prev)
		}
	}
	if v.failed {
		return v.fault
	}
	if v.hasAnchor {
		a := &v.anchor
		switch {
		case a.Run != v.run:
			v.fail(0, ReasonAnchorRun, "the anchor is for run %s, not run %s", uuid.UUID(a.Run), uuid.UUID(v.run))
		case a.Sequence >= n:
			v.fail(n, ReasonAnchorBeyondEnd, "the anchor pins event %d but the log has %d events: it was truncated", a.Sequence, n)
		case v.anchored != a.Hash:
			v.fail(a.Sequence, ReasonAnchorMismatch, "the anchor pins hash %v for event %d, which has hash %v: the chain was rewritten", a.Hash, a.Sequence, v.anchored)
		}
		if v.failed {
			return v.fault
		}
	}
	return Verification{Valid: true, Length: n}
}

// FinishCorruptHead completes the verification when the run's head record
// does not decode (err is DecodeHead's error). The result is the fault Add
// found, if any, else ReasonHeadCorrupt at 0.
func (v *Verifier) FinishCorruptHead(err error) Verification {
	if !v.failed {
		v.fail(0, ReasonHeadCorrupt, "the head record does not decode: %v", err)
	}
	return v.fault
}

// fail records the first fault and returns false.
func (v *Verifier) fail(seq uint64, reason Reason, format string, args ...any) bool {
	v.failed = true
	v.fault = Verification{
		Length:   seq,
		FirstBad: seq,
		Reason:   reason,
		Detail:   fmt.Sprintf(format, args...),
	}
	return false
}
