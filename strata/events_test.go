package strata_test

// Acceptance tests of the event log (contract §6): sequences, failed
// appends, transactions, canonical hashing, concurrency, restart and crash
// recovery. Tamper evidence is in events_tamper_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// evPayload is the payload of the i-th event of writer g.
func evPayload(g, i int) value.Value {
	return value.Object(map[string]value.Value{
		"g":    value.Int(int64(g)),
		"i":    value.Int(int64(i)),
		"note": value.String(fmt.Sprintf("writer %d event %d", g, i)),
	})
}

// evGI returns the writer and index of a payload built by evPayload.
func evGI(t *testing.T, p value.Value) (int, int) {
	t.Helper()
	obj, ok := p.AsObject()
	require.True(t, ok, "payload is %v", p.Kind())
	g, ok := obj["g"].AsInt()
	require.True(t, ok)
	i, ok := obj["i"].AsInt()
	require.True(t, ok)
	return int(g), int(i)
}

// refHash is an independent implementation of the documented version-1
// hash input (events/doc.go, contract §6), so that a stored hash is checked
// against the format and not only against the package that wrote it.
func refHash(run strata.RunID, seq uint64, typ string, ts int64, payload []byte, prev events.Hash) events.Hash {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(len("strata.event")))
	b = append(b, "strata.event"...)
	b = append(b, 1) // hash format version
	b = append(b, run[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(typ)))
	b = append(b, typ...)
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	b = append(b, prev[:]...)
	return sha256.Sum256(b)
}

func mustEncodeValue(t *testing.T, v value.Value) []byte {
	t.Helper()
	b, err := value.Encode(v)
	require.NoError(t, err)
	return b
}

// requireSameEvent asserts that got is want as read back: every hashed
// field and the commit version.
func requireSameEvent(t *testing.T, want, got strata.Event) {
	t.Helper()
	require.Equal(t, want.Sequence, got.Sequence)
	require.Equal(t, want.Type, got.Type, "event %d", want.Sequence)
	require.Equal(t, want.Timestamp, got.Timestamp, "event %d", want.Sequence)
	require.Equal(t, want.PrevHash, got.PrevHash, "event %d", want.Sequence)
	require.Equal(t, want.Hash, got.Hash, "event %d", want.Sequence)
	require.Equal(t, want.Version, got.Version, "event %d", want.Sequence)
	require.True(t, value.Equal(want.Payload, got.Payload), "event %d payload: want %v, got %v", want.Sequence, want.Payload, got.Payload)
}

// requireValidChain verifies run's log and asserts it is valid with n
// events, and that every stored hash matches the reference hash.
func requireValidChain(t *testing.T, db *strata.Database, run strata.RunID, n uint64) []strata.Event {
	t.Helper()
	v, err := db.VerifyEvents(ctx, run, nil)
	require.NoError(t, err)
	require.True(t, v.Valid, "verification: %+v", v)
	require.Equal(t, n, v.Length)
	require.Equal(t, events.ReasonNone, v.Reason)
	require.NoError(t, v.Err())
	l, err := db.EventLen(ctx, run)
	require.NoError(t, err)
	require.Equal(t, n, l)
	evs, err := db.EventRange(ctx, run, 0, n)
	require.NoError(t, err)
	require.Len(t, evs, int(n))
	var prev events.Hash
	for i, e := range evs {
		require.Equal(t, uint64(i), e.Sequence)
		require.Equal(t, prev, e.PrevHash, "event %d", i)
		require.Equal(t, refHash(run, e.Sequence, e.Type, e.Timestamp, mustEncodeValue(t, e.Payload), e.PrevHash), e.Hash, "event %d", i)
		prev = e.Hash
	}
	h, err := db.EventHead(ctx, run)
	require.NoError(t, err)
	require.Equal(t, events.Head{Len: n, Hash: prev}, h)
	return evs
}

// --- semantics ---

func TestEventSequencesStartAtZeroAndChain(t *testing.T) {
	db, run := openTxnDB(t)

	n, err := db.EventLen(ctx, run)
	require.NoError(t, err)
	require.Zero(t, n)
	h, err := db.EventHead(ctx, run)
	require.NoError(t, err)
	require.Equal(t, events.Head{}, h)
	_, err = db.EventAnchor(ctx, run)
	require.ErrorIs(t, err, strata.ErrNotFound, "an empty log has no anchor")
	_, err = db.Event(ctx, run, 0)
	require.ErrorIs(t, err, strata.ErrNotFound)
	v, err := db.VerifyEvents(ctx, run, nil)
	require.NoError(t, err)
	require.Equal(t, events.Verification{Valid: true}, v, "an empty log is valid")

	var appended []strata.Event
	var prev events.Hash
	for i := range 5 {
		before := db.CurrentVersion()
		e, err := db.AppendEvent(ctx, run, "step", evPayload(0, i))
		require.NoError(t, err)
		require.Equal(t, uint64(i), e.Sequence)
		require.Equal(t, "step", e.Type)
		require.Equal(t, prev, e.PrevHash)
		require.Equal(t, before+1, e.Version, "a direct append is one commit")
		require.NotZero(t, e.Timestamp)
		require.Equal(t, refHash(run, e.Sequence, e.Type, e.Timestamp, mustEncodeValue(t, e.Payload), prev), e.Hash)
		prev = e.Hash
		appended = append(appended, e)
	}
	stored := requireValidChain(t, db, run, 5)
	for i := range appended {
		requireSameEvent(t, appended[i], stored[i])
		got, err := db.Event(ctx, run, uint64(i))
		require.NoError(t, err)
		requireSameEvent(t, appended[i], got)
	}

	_, err = db.Event(ctx, run, 5)
	require.ErrorIs(t, err, strata.ErrNotFound, "one past the end")
	_, err = db.Event(ctx, run, math.MaxUint64)
	require.ErrorIs(t, err, strata.ErrNotFound)

	a, err := db.EventAnchor(ctx, run)
	require.NoError(t, err)
	require.Equal(t, events.Anchor{Run: run, Sequence: 4, Hash: appended[4].Hash}, a)
	v, err = db.VerifyEvents(ctx, run, &a)
	require.NoError(t, err)
	require.Equal(t, events.Verification{Valid: true, Length: 5}, v)

	// Another run has its own log, starting at 0.
	other := strata.NewRunID()
	e, err := db.AppendEvent(ctx, other, "step", evPayload(0, 0))
	require.NoError(t, err)
	require.Equal(t, uint64(0), e.Sequence)
	require.True(t, e.PrevHash.IsZero())
	require.NotEqual(t, appended[0].Hash, e.Hash, "the run id is part of the hash")
}

func TestEventRangesAndTypes(t *testing.T) {
	db, run := openTxnDB(t)
	types := []string{"a", "b", "a", "c", "a", "b"}
	for i, typ := range types {
		_, err := db.AppendEvent(ctx, run, typ, evPayload(0, i))
		require.NoError(t, err)
	}
	seqs := func(evs []strata.Event) []uint64 {
		out := []uint64{}
		for _, e := range evs {
			out = append(out, e.Sequence)
		}
		return out
	}

	evs, err := db.EventRange(ctx, run, 1, 4)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, seqs(evs))
	evs, err = db.EventRange(ctx, run, 4, 100)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 5}, seqs(evs), "end is capped at the length")
	evs, err = db.EventRange(ctx, run, 6, 10)
	require.NoError(t, err)
	require.Empty(t, evs)
	evs, err = db.EventRange(ctx, run, 4, 2)
	require.NoError(t, err)
	require.Empty(t, evs)

	evs, err = db.EventRangeReverse(ctx, run, 0, 100)
	require.NoError(t, err)
	require.Equal(t, []uint64{5, 4, 3, 2, 1, 0}, seqs(evs))
	evs, err = db.EventRangeReverse(ctx, run, 2, 5)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 3, 2}, seqs(evs))
	for _, e := range evs {
		_, i := evGI(t, e.Payload)
		require.Equal(t, int(e.Sequence), i)
	}

	for typ, want := range map[string][]uint64{"a": {0, 2, 4}, "b": {1, 5}, "c": {3}, "none": {}} {
		evs, err := db.EventsByType(ctx, run, typ)
		require.NoError(t, err)
		require.Equal(t, want, seqs(evs), "type %q", typ)
		for _, e := range evs {
			require.Equal(t, typ, e.Type)
			full, err := db.Event(ctx, run, e.Sequence)
			require.NoError(t, err)
			requireSameEvent(t, full, e)
		}
	}
}

func TestEventBatchSharesTimestampAndCommit(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.AppendEvent(ctx, run, "first", evPayload(0, 0))
	require.NoError(t, err)
	before := db.CurrentVersion()
	batch := []strata.EventData{
		{Type: "x", Payload: evPayload(1, 0)},
		{Type: "y", Payload: evPayload(1, 1)},
		{Type: "z", Payload: evPayload(1, 2)},
	}
	evs, err := db.AppendEvents(ctx, run, batch)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	require.Equal(t, before+1, db.CurrentVersion(), "a batch is one commit")
	for i, e := range evs {
		require.Equal(t, uint64(1+i), e.Sequence)
		require.Equal(t, batch[i].Type, e.Type)
		require.Equal(t, evs[0].Timestamp, e.Timestamp, "a batch shares one timestamp")
		require.Equal(t, before+1, e.Version)
		if i > 0 {
			require.Equal(t, evs[i-1].Hash, e.PrevHash)
		}
	}
	stored := requireValidChain(t, db, run, 4)
	for i, e := range evs {
		requireSameEvent(t, e, stored[1+i])
	}

	// The same in a transaction.
	var first uint64
	v, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) (err error) {
		first, err = tx.AppendEvents(batch)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, uint64(4), first)
	stored = requireValidChain(t, db, run, 7)
	for i := range 3 {
		require.Equal(t, stored[4].Timestamp, stored[4+i].Timestamp)
		require.Equal(t, v, stored[4+i].Version)
	}
}

func TestEventFailedAppendsLeaveNoGap(t *testing.T) {
	db, run := openTxnDB(t)
	first, err := db.AppendEvent(ctx, run, "ok", evPayload(0, 0))
	require.NoError(t, err)

	good := evPayload(0, 1)
	nan := value.Object(map[string]value.Value{
		"outer": value.Object(map[string]value.Value{"x": value.Float(math.NaN())}),
	})
	inf := value.Object(map[string]value.Value{"x": value.Float(math.Inf(1))})
	badUTF8 := value.Object(map[string]value.Value{"s": value.String("\xff\xfe")})
	cases := []struct {
		name    string
		typ     string
		payload value.Value
	}{
		{"empty type", "", good},
		{"type too long", strings.Repeat("t", events.MaxTypeLen+1), good},
		{"type not UTF-8", "bad\xff", good},
		{"payload null", "ok", value.Null()},
		{"payload int", "ok", value.Int(1)},
		{"payload string", "ok", value.String("{}")},
		{"payload array", "ok", value.Array(good)},
		{"NaN inside payload", "ok", nan},
		{"Inf inside payload", "ok", inf},
		{"invalid UTF-8 inside payload", "ok", badUTF8},
	}
	version := db.CurrentVersion()
	requireNothing := func(t *testing.T) {
		t.Helper()
		require.Equal(t, version, db.CurrentVersion(), "a failed append commits nothing")
		n, err := db.EventLen(ctx, run)
		require.NoError(t, err)
		require.Equal(t, uint64(1), n)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := db.AppendEvent(ctx, run, c.typ, c.payload)
			require.ErrorIs(t, err, strata.ErrInvalidValue)
			requireNothing(t)

			// An invalid event in the middle of a batch appends none.
			_, err = db.AppendEvents(ctx, run, []strata.EventData{
				{Type: "ok", Payload: good}, {Type: c.typ, Payload: c.payload}, {Type: "ok", Payload: good},
			})
			require.ErrorIs(t, err, strata.ErrInvalidValue)
			require.ErrorIs(t, err, events.ErrInvalidEvent)
			requireNothing(t)

			// And in a transaction: the error is returned, nothing is
			// buffered, and a later append gets the next sequence.
			err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
				_, err := tx.AppendEvent(c.typ, c.payload)
				require.ErrorIs(t, err, strata.ErrInvalidValue)
				_, err = tx.AppendEvents([]strata.EventData{{Type: "ok", Payload: good}, {Type: c.typ, Payload: c.payload}})
				require.ErrorIs(t, err, strata.ErrInvalidValue)
				n, err := tx.EventLen()
				require.NoError(t, err)
				require.Equal(t, uint64(1), n, "a failed append inside a transaction buffers nothing")
				return nil
			})
			require.NoError(t, err)
			requireNothing(t)
		})
	}
	_, err = db.AppendEvents(ctx, run, nil)
	require.ErrorIs(t, err, strata.ErrInvalidValue, "an empty batch")
	_, err = db.AppendEvent(ctx, strata.RunID{}, "ok", good)
	require.ErrorIs(t, err, strata.ErrInvalidRunID)
	_, err = db.AppendEvent(ctx, run, "ok", value.Object(map[string]value.Value{"big": value.Bytes(make([]byte, strata.MaxValueSize))}))
	require.ErrorIs(t, err, strata.ErrInvalidValue, "a payload larger than MaxValueSize")
	requireNothing(t)

	next, err := db.AppendEvent(ctx, run, "ok", good)
	require.NoError(t, err)
	require.Equal(t, uint64(1), next.Sequence, "failed appends leave no gap")
	require.Equal(t, first.Hash, next.PrevHash)
	requireValidChain(t, db, run, 2)
}

func TestEventAbortedTransactionAppendsNothing(t *testing.T) {
	db, run := openTxnDB(t)
	for i := range 3 {
		_, err := db.AppendEvent(ctx, run, "ok", evPayload(0, i))
		require.NoError(t, err)
	}
	version := db.CurrentVersion()
	boom := errors.New("boom")
	err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
		seq, err := tx.AppendEvent("doomed", evPayload(1, 0))
		require.NoError(t, err)
		require.Equal(t, uint64(3), seq)
		_, err = tx.AppendEvents([]strata.EventData{{Type: "doomed", Payload: evPayload(1, 1)}})
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)

	// A manual transaction ended without Commit appends nothing either.
	tx, err := db.Begin(ctx, run)
	require.NoError(t, err)
	_, err = tx.AppendEvent("doomed", evPayload(1, 2))
	require.NoError(t, err)
	tx.End()

	require.Equal(t, version, db.CurrentVersion())
	before := requireValidChain(t, db, run, 3)
	got, err := db.EventsByType(ctx, run, "doomed")
	require.NoError(t, err)
	require.Empty(t, got)

	e, err := db.AppendEvent(ctx, run, "ok", evPayload(0, 3))
	require.NoError(t, err)
	require.Equal(t, uint64(3), e.Sequence, "the next append gets the next free sequence")
	require.Equal(t, before[2].Hash, e.PrevHash)
	requireValidChain(t, db, run, 4)
}

// An append the transaction refused (an invalid event, an empty batch)
// reads nothing: it leaves no read of the log head behind, so a
// transaction of blind writes stays blind and commits although another
// commit appended meanwhile.
func TestEventRefusedAppendLeavesNoRead(t *testing.T) {
	db, run := openTxnDB(t)
	for name, refused := range map[string]func(tx *strata.Txn) error{
		"invalid event": func(tx *strata.Txn) error { _, err := tx.AppendEvent("", evPayload(0, 0)); return err },
		"invalid event in a batch": func(tx *strata.Txn) error {
			_, err := tx.AppendEvents([]strata.EventData{{Type: "ok", Payload: evPayload(0, 0)}, {Type: "", Payload: evPayload(0, 1)}})
			return err
		},
		"empty batch": func(tx *strata.Txn) error { _, err := tx.AppendEvents(nil); return err },
	} {
		tx, err := db.Begin(ctx, run)
		require.NoError(t, err)
		require.NoError(t, tx.Put([]byte("blind"), value.Int(1)))
		require.ErrorIs(t, refused(tx), events.ErrInvalidEvent, name)
		_, err = db.AppendEvent(ctx, run, "other", evPayload(1, 0))
		require.NoError(t, err)
		_, err = tx.Commit()
		require.NoError(t, err, "%s: the blind writes commit", name)
	}
}

func TestEventReadYourAppendsInTxn(t *testing.T) {
	db, run := openTxnDB(t)
	base, err := db.AppendEvent(ctx, run, "base", evPayload(0, 0))
	require.NoError(t, err)

	tx := begin(t, db, run)
	seq, err := tx.AppendEvent("mine", evPayload(1, 0))
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	seq, err = tx.AppendEvents([]strata.EventData{{Type: "mine", Payload: evPayload(1, 1)}, {Type: "mine", Payload: evPayload(1, 2)}})
	require.NoError(t, err)
	require.Equal(t, uint64(2), seq)

	n, err := tx.EventLen()
	require.NoError(t, err)
	require.Equal(t, uint64(4), n)
	h, err := tx.EventHead()
	require.NoError(t, err)
	require.Equal(t, uint64(4), h.Len)

	own, err := tx.EventRange(0, 100)
	require.NoError(t, err)
	require.Len(t, own, 4)
	requireSameEvent(t, base, own[0])
	for i, e := range own[1:] {
		require.Equal(t, uint64(1+i), e.Sequence)
		require.Equal(t, "mine", e.Type)
		require.Zero(t, e.Version, "an own append has no commit version yet")
		_, gi := evGI(t, e.Payload)
		require.Equal(t, i, gi)
		require.Equal(t, own[i].Hash, e.PrevHash)
		require.Equal(t, refHash(run, e.Sequence, e.Type, e.Timestamp, mustEncodeValue(t, e.Payload), e.PrevHash), e.Hash)
	}
	require.Equal(t, own[3].Hash, h.Hash)
	e2, err := tx.Event(2)
	require.NoError(t, err)
	requireSameEvent(t, own[2], e2)
	_, err = tx.Event(4)
	require.ErrorIs(t, err, strata.ErrNotFound)

	// Outside, nothing is visible before the commit.
	n, err = db.EventLen(ctx, run)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)

	version, err := tx.Commit()
	require.NoError(t, err)
	stored := requireValidChain(t, db, run, 4)
	for i := 1; i < 4; i++ {
		own[i].Version = version
		requireSameEvent(t, own[i], stored[i])
	}
}

func TestEventCrossPrimitiveAtomicity(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.Put(ctx, run, []byte("watched"), value.Int(0))
	require.NoError(t, err)

	// Each attempt puts a KV key, appends an event and sets a state cell;
	// an interfering commit aborts it.
	interferences := []struct {
		name      string
		read      func(tx *strata.Txn) error
		interfere func() error
		prim      strata.Primitive
	}{
		{"event append", func(*strata.Txn) error { return nil }, func() error {
			_, err := db.AppendEvent(ctx, run, "other", evPayload(9, 0))
			return err
		}, strata.PrimitiveEvent},
		{"kv write", func(tx *strata.Txn) error { _, err := tx.Get([]byte("watched")); return err }, func() error {
			_, err := db.Put(ctx, run, []byte("watched"), value.Int(1))
			return err
		}, strata.PrimitiveKV},
		{"state write", func(tx *strata.Txn) error { _, err := tx.StateRead("cell"); return ignoreNotFound(err) }, func() error {
			_, err := db.StateSet(ctx, run, "cell", value.String("other"))
			return err
		}, strata.PrimitiveState},
	}
	for i, c := range interferences {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Appendf(nil, "aborted-%d", i)
			evLen, err := db.EventLen(ctx, run)
			require.NoError(t, err)
			stateBefore, stateErr := db.StateRead(ctx, run, "cell")

			tx := begin(t, db, run)
			require.NoError(t, c.read(tx))
			require.NoError(t, tx.Put(key, value.Int(1)))
			_, err = tx.AppendEvent("aborted", evPayload(1, i))
			require.NoError(t, err)
			_, err = tx.StateSet("cell", value.String(c.name))
			require.NoError(t, err)
			require.NoError(t, c.interfere())
			version := db.CurrentVersion()
			_, err = tx.Commit()
			var ce *strata.ConflictError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, conflictPrimitives(ce), c.prim)

			require.Equal(t, version, db.CurrentVersion())
			_, err = db.Get(ctx, run, key)
			require.ErrorIs(t, err, strata.ErrNotFound, "the KV write was aborted")
			got, err := db.EventsByType(ctx, run, "aborted")
			require.NoError(t, err)
			require.Empty(t, got, "the event was aborted")
			n, err := db.EventLen(ctx, run)
			require.NoError(t, err)
			if c.prim == strata.PrimitiveEvent {
				require.Equal(t, evLen+1, n, "only the interfering append")
			} else {
				require.Equal(t, evLen, n)
			}
			st, err := db.StateRead(ctx, run, "cell")
			if c.prim == strata.PrimitiveState {
				require.NoError(t, err)
				require.True(t, value.Equal(value.String("other"), st.Value))
			} else if stateErr != nil {
				require.ErrorIs(t, err, strata.ErrNotFound, "the state cell was aborted")
			} else {
				require.NoError(t, err)
				require.Equal(t, stateBefore.Counter, st.Counter, "the state write was aborted")
			}
			requireValidChain(t, db, run, n)
		})
	}

	// Without interference all three commit together, at one version.
	n, err := db.EventLen(ctx, run)
	require.NoError(t, err)
	var seq uint64
	version, err := db.TransactionWithVersion(ctx, run, func(tx *strata.Txn) (err error) {
		if err = tx.Put([]byte("committed"), value.Int(7)); err != nil {
			return err
		}
		if seq, err = tx.AppendEvent("committed", evPayload(2, 0)); err != nil {
			return err
		}
		_, err = tx.StateSet("cell", value.String("committed"))
		return err
	})
	require.NoError(t, err)
	require.Equal(t, n, seq)
	kv, err := db.Get(ctx, run, []byte("committed"))
	require.NoError(t, err)
	require.Equal(t, version, kv.Version)
	e, err := db.Event(ctx, run, seq)
	require.NoError(t, err)
	require.Equal(t, version, e.Version)
	st, err := db.StateRead(ctx, run, "cell")
	require.NoError(t, err)
	require.Equal(t, version, st.Version)
	requireValidChain(t, db, run, n+1)
}

// conflictPrimitives returns the primitive of each key of ce
// (ConflictError.Primitives is nil when every key is a KV key).
func conflictPrimitives(ce *strata.ConflictError) []strata.Primitive {
	if ce.Primitives == nil {
		return make([]strata.Primitive, len(ce.Keys)) // all PrimitiveKV
	}
	return ce.Primitives
}

func ignoreNotFound(err error) error {
	if errors.Is(err, strata.ErrNotFound) {
		return nil
	}
	return err
}

func TestEventTwoTxnsAppendingExactlyOneCommits(t *testing.T) {
	db, run := openTxnDB(t)
	_, err := db.AppendEvent(ctx, run, "base", evPayload(0, 0))
	require.NoError(t, err)

	a, b := begin(t, db, run), begin(t, db, run)
	sa, err := a.AppendEvent("a", evPayload(1, 0))
	require.NoError(t, err)
	sb, err := b.AppendEvent("b", evPayload(2, 0))
	require.NoError(t, err)
	require.Equal(t, uint64(1), sa)
	require.Equal(t, uint64(1), sb, "both see the same head")

	_, err = a.Commit()
	require.NoError(t, err)
	_, err = b.Commit()
	require.ErrorIs(t, err, strata.ErrConflict)
	var ce *strata.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, run, ce.Run)
	require.Equal(t, []strata.Primitive{strata.PrimitiveEvent}, ce.Primitives)
	require.Equal(t, [][]byte{[]byte("event-head")}, ce.Keys)

	evs := requireValidChain(t, db, run, 2)
	require.Equal(t, "a", evs[1].Type)

	// Retried, the loser appends after the winner.
	var seq uint64
	err = db.Transaction(ctx, run, func(tx *strata.Txn) (err error) {
		seq, err = tx.AppendEvent("b", evPayload(2, 0))
		return err
	})
	require.NoError(t, err)
	require.Equal(t, uint64(2), seq)
	requireValidChain(t, db, run, 3)
}

// --- canonical hashing ---

func TestEventPayloadHashIsCanonical(t *testing.T) {
	// The same logical payload, built two ways: map literals with their
	// keys in different orders, and maps filled in opposite orders, with
	// nested objects, -0 against +0.
	p1 := value.Object(map[string]value.Value{
		"zeta":  value.Int(1),
		"alpha": value.String("a"),
		"mid": value.Object(map[string]value.Value{
			"y": value.Array(value.Int(1), value.Object(map[string]value.Value{"q": value.Bool(true), "p": value.Null()})),
			"x": value.Float(0),
		}),
		"beta": value.Bytes([]byte{0, 1, 2}),
	})
	inner := map[string]value.Value{}
	inner["p"] = value.Null()
	inner["q"] = value.Bool(true)
	mid := map[string]value.Value{}
	mid["x"] = value.Float(math.Copysign(0, -1))
	mid["y"] = value.Array(value.Int(1), value.Object(inner))
	outer := map[string]value.Value{}
	for _, k := range []string{"beta", "mid", "alpha", "zeta"} {
		switch k {
		case "beta":
			outer[k] = value.Bytes([]byte{0, 1, 2})
		case "mid":
			outer[k] = value.Object(mid)
		case "alpha":
			outer[k] = value.String("a")
		case "zeta":
			outer[k] = value.Int(1)
		}
	}
	p2 := value.Object(outer)

	enc1 := mustEncodeValue(t, p1)
	for range 50 { // map iteration order is random: the encoding must not be
		require.Equal(t, enc1, mustEncodeValue(t, p1))
		require.Equal(t, enc1, mustEncodeValue(t, p2))
	}
	// Keys are sorted: alpha, beta, mid, zeta.
	require.Equal(t, byte(0x08), enc1[0])
	require.Equal(t, byte(4), enc1[1])
	require.Equal(t, []byte("\x05alpha"), enc1[2:8])
	ia, ib, im, iz := bytes.Index(enc1, []byte("alpha")), bytes.Index(enc1, []byte("beta")), bytes.Index(enc1, []byte("mid")), bytes.Index(enc1, []byte("zeta"))
	require.True(t, ia < ib && ib < im && im < iz, "object keys in sorted order")

	run := strata.NewRunID()
	var prev events.Hash
	prev[0] = 7
	h1 := events.ComputeHash(run, 3, "canon", 1_700_000_000_000_000_000, enc1, prev)
	h2 := events.ComputeHash(run, 3, "canon", 1_700_000_000_000_000_000, mustEncodeValue(t, p2), prev)
	require.Equal(t, h1, h2)
	require.Equal(t, refHash(run, 3, "canon", 1_700_000_000_000_000_000, enc1, prev), h1)
	// Every hashed field matters.
	require.NotEqual(t, h1, events.ComputeHash(strata.NewRunID(), 3, "canon", 1_700_000_000_000_000_000, enc1, prev))
	require.NotEqual(t, h1, events.ComputeHash(run, 4, "canon", 1_700_000_000_000_000_000, enc1, prev))
	require.NotEqual(t, h1, events.ComputeHash(run, 3, "canon2", 1_700_000_000_000_000_000, enc1, prev))
	require.NotEqual(t, h1, events.ComputeHash(run, 3, "canon", 1_700_000_000_000_000_001, enc1, prev))
	require.NotEqual(t, h1, events.ComputeHash(run, 3, "canon", 1_700_000_000_000_000_000, enc1, events.Hash{}))

	// Stored events hash identically after a restart: the stored hash is
	// recomputed from the read-back event, and the two payloads appended
	// in one batch (one timestamp) differ only in their sequence and
	// previous hash.
	fs := vfs.NewMem()
	db := openMem(t, fs, strata.DurabilityBatched)
	evs, err := db.AppendEvents(ctx, run, []strata.EventData{{Type: "canon", Payload: p1}, {Type: "canon", Payload: p2}})
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db = openMem(t, fs, strata.DurabilityBatched)
	defer db.Close()
	stored := requireValidChain(t, db, run, 2)
	for i, e := range stored {
		requireSameEvent(t, evs[i], e)
		require.Equal(t, enc1, mustEncodeValue(t, e.Payload), "the read-back payload re-encodes to the same bytes")
		require.Equal(t, events.ComputeHash(run, e.Sequence, e.Type, e.Timestamp, mustEncodeValue(t, e.Payload), e.PrevHash), e.Hash)
	}
	require.Equal(t, events.ComputeHash(run, 1, "canon", stored[0].Timestamp, enc1, stored[0].Hash), stored[1].Hash)
}

// --- concurrency ---

// requireEachOnce asserts that seqs holds 0..n-1 exactly once.
func requireEachOnce(t *testing.T, seqs []uint64, n int) {
	t.Helper()
	require.Len(t, seqs, n)
	seen := make([]bool, n)
	for _, s := range seqs {
		require.Less(t, s, uint64(n))
		require.False(t, seen[s], "sequence %d given twice", s)
		seen[s] = true
	}
}

// concurrentAppends runs writers goroutines that each append perWriter
// events with append, and returns each writer's sequences in order.
func concurrentAppends(t *testing.T, writers, perWriter int, appendOne func(g, i int) (uint64, error)) [][]uint64 {
	t.Helper()
	seqs := make([][]uint64, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				s, err := appendOne(g, i)
				if err != nil {
					errs[g] = fmt.Errorf("writer %d append %d: %w", g, i, err)
					return
				}
				seqs[g] = append(seqs[g], s)
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return seqs
}

// checkConcurrentAppends asserts that every writer's appends got distinct
// sequences covering 0..n-1, increasing per writer, each holding the
// writer's payload, and that the chain verifies.
func checkConcurrentAppends(t *testing.T, db *strata.Database, run strata.RunID, seqs [][]uint64) {
	t.Helper()
	var all []uint64
	for _, s := range seqs {
		all = append(all, s...)
	}
	n := len(all)
	requireEachOnce(t, all, n)
	stored := requireValidChain(t, db, run, uint64(n))
	for g, s := range seqs {
		for i, seq := range s {
			if i > 0 {
				require.Greater(t, seq, s[i-1], "writer %d's appends are in its order", g)
			}
			gg, ii := evGI(t, stored[seq].Payload)
			require.Equal(t, [2]int{g, i}, [2]int{gg, ii}, "event %d", seq)
		}
	}
}

func TestEventConcurrentDirectAppends(t *testing.T) {
	db, run := openTxnDB(t)
	const writers, perWriter = 8, 200
	seqs := concurrentAppends(t, writers, perWriter, func(g, i int) (uint64, error) {
		e, err := db.AppendEvent(ctx, run, "direct", evPayload(g, i))
		return e.Sequence, err
	})
	checkConcurrentAppends(t, db, run, seqs)
}

func TestEventConcurrentTxnAndDirectAppends(t *testing.T) {
	db, run := openTxnDB(t)
	const writers, perWriter = 8, 200
	retry := strata.WithRetry(strata.RetryConfig{MaxRetries: 1000, BaseDelay: 10 * time.Microsecond, MaxDelay: time.Millisecond})
	var txnAppends atomic.Int64
	seqs := concurrentAppends(t, writers, perWriter, func(g, i int) (uint64, error) {
		if g%2 == 1 {
			e, err := db.AppendEvent(ctx, run, "direct", evPayload(g, i))
			return e.Sequence, err
		}
		var seq uint64
		err := db.Transaction(ctx, run, func(tx *strata.Txn) (err error) {
			n, err := tx.EventLen()
			if err != nil {
				return err
			}
			if seq, err = tx.AppendEvent("txn", evPayload(g, i)); err != nil {
				return err
			}
			if seq != n {
				return fmt.Errorf("appended at %d with a log of %d", seq, n)
			}
			return nil
		}, retry)
		txnAppends.Add(1)
		return seq, err
	})
	require.Equal(t, int64(writers/2*perWriter), txnAppends.Load())
	checkConcurrentAppends(t, db, run, seqs)
	txn, err := db.EventsByType(ctx, run, "txn")
	require.NoError(t, err)
	require.Len(t, txn, writers/2*perWriter)
}

func TestEventConcurrentBatchesAreContiguous(t *testing.T) {
	db, run := openTxnDB(t)
	const writers, batches, size = 6, 25, 5
	retry := strata.WithRetry(strata.RetryConfig{MaxRetries: 1000, BaseDelay: 10 * time.Microsecond, MaxDelay: time.Millisecond})
	batch := func(g, b int) []strata.EventData {
		out := make([]strata.EventData, size)
		for k := range out {
			out[k] = strata.EventData{Type: fmt.Sprintf("batch-%d", g), Payload: evPayload(g, b*size+k)}
		}
		return out
	}
	firsts := concurrentAppends(t, writers, batches, func(g, b int) (uint64, error) {
		if g < 2 { // two writers append their batches in transactions
			var first uint64
			err := db.Transaction(ctx, run, func(tx *strata.Txn) (err error) {
				first, err = tx.AppendEvents(batch(g, b))
				return err
			}, retry)
			return first, err
		}
		evs, err := db.AppendEvents(ctx, run, batch(g, b))
		if err != nil {
			return 0, err
		}
		for k, e := range evs {
			if e.Sequence != evs[0].Sequence+uint64(k) {
				return 0, fmt.Errorf("batch returned sequences %d then %d", evs[0].Sequence, e.Sequence)
			}
		}
		return evs[0].Sequence, nil
	})
	const n = writers * batches * size
	var all []uint64
	for _, f := range firsts {
		for _, first := range f {
			for k := range size {
				all = append(all, first+uint64(k))
			}
		}
	}
	requireEachOnce(t, all, n)
	stored := requireValidChain(t, db, run, n)
	for g, f := range firsts {
		for b, first := range f {
			for k := range size {
				e := stored[first+uint64(k)]
				gg, i := evGI(t, e.Payload)
				require.Equal(t, [2]int{g, b*size + k}, [2]int{gg, i}, "batch %d of writer %d is contiguous and in order", b, g)
				require.Equal(t, stored[first].Timestamp, e.Timestamp)
				require.Equal(t, stored[first].Version, e.Version)
			}
		}
	}
}

// --- restart and crash ---

func TestEventRestartContinuesChain(t *testing.T) {
	dir := t.TempDir()
	run, other := strata.NewRunID(), strata.NewRunID()
	db, err := strata.Open(dir)
	require.NoError(t, err)
	var appended []strata.Event
	for i := range 6 {
		e, err := db.AppendEvent(ctx, run, "before", evPayload(0, i))
		require.NoError(t, err)
		appended = append(appended, e)
	}
	_, err = db.AppendEvent(ctx, other, "other", evPayload(1, 0))
	require.NoError(t, err)
	anchor, err := db.EventAnchor(ctx, run)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	for round := range 2 {
		db, err = strata.Open(dir)
		require.NoError(t, err)
		stored := requireValidChain(t, db, run, uint64(len(appended)))
		for i := range appended {
			requireSameEvent(t, appended[i], stored[i])
		}
		v, err := db.VerifyEvents(ctx, run, &anchor)
		require.NoError(t, err)
		require.True(t, v.Valid, "an anchor taken before the restart still verifies: %+v", v)
		e, err := db.AppendEvent(ctx, run, "after", evPayload(0, len(appended)))
		require.NoError(t, err)
		require.Equal(t, uint64(len(appended)), e.Sequence, "round %d", round)
		require.Equal(t, appended[len(appended)-1].Hash, e.PrevHash)
		appended = append(appended, e)
		requireValidChain(t, db, run, uint64(len(appended)))
		requireValidChain(t, db, other, 1)
		require.NoError(t, db.Close())
	}
}

// TestEventCrashRecoveryIsValidPrefix crashes while goroutines append and
// checks that the recovered log is a valid chain, a prefix of what was
// appended, holding at least every append at or below the durable version.
func TestEventCrashRecoveryIsValidPrefix(t *testing.T) {
	for _, mode := range []strata.DurabilityMode{strata.DurabilityBatched, strata.DurabilityNone} {
		for _, pct := range []int{0, 50} {
			t.Run(fmt.Sprintf("%s/unsynced=%d", mode, pct), func(t *testing.T) {
				eventCrashOnce(t, mode, pct)
			})
		}
	}
}

// An anchor never names events a crash can take back: EventAnchor makes
// them durable first, so after a crash that keeps nothing unsynced the log
// still verifies against it, and the next append continues after it.
func TestEventAnchorSurvivesCrash(t *testing.T) {
	for _, mode := range []strata.DurabilityMode{strata.DurabilityBatched, strata.DurabilityNone} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts := strata.Options{Path: "db", FS: fs, Durability: mode, SyncInterval: time.Hour, MaxPendingCommits: 1 << 20}
			db, err := strata.OpenWith(opts)
			require.NoError(t, err)
			run := strata.NewRunID()
			for i := range 5 {
				_, err := db.AppendEvent(ctx, run, "e", evPayload(0, i))
				require.NoError(t, err)
			}
			_, err = db.Flush(ctx)
			require.NoError(t, err)
			for i := 5; i < 8; i++ {
				_, err := db.AppendEvent(ctx, run, "e", evPayload(0, i))
				require.NoError(t, err)
			}
			anchor, err := db.EventAnchor(ctx, run)
			require.NoError(t, err)
			require.Equal(t, uint64(7), anchor.Sequence)
			// An anchor of events that are durable already syncs nothing,
			// whatever other runs have pending.
			_, err = db.Put(ctx, strata.NewRunID(), []byte("elsewhere"), value.Int(1))
			require.NoError(t, err)
			syncs := db.Metrics().Syncs
			again, err := db.EventAnchor(ctx, run)
			require.NoError(t, err)
			require.Equal(t, anchor, again)
			require.Equal(t, syncs, db.Metrics().Syncs, "no sync for an anchor of durable events")
			db = reopenAfterCrashAndVerify(t, fs, opts, db, run, anchor)
			defer db.Close()
			e, err := db.AppendEvent(ctx, run, "e", evPayload(0, 8))
			require.NoError(t, err)
			require.Equal(t, uint64(8), e.Sequence, "no sequence the anchor names is reused")
		})
	}
}

// shutdownAtLook is a context that starts db.Shutdown at its n-th look
// (Err call) and returns once the database stopped accepting operations.
type shutdownAtLook struct {
	context.Context
	db       *strata.Database
	n        int
	looks    int
	shutdown chan error
}

func (c *shutdownAtLook) Err() error {
	if c.looks++; c.looks == c.n {
		go func() { c.shutdown <- c.db.Shutdown(context.Background()) }()
		for c.db.IsOpen() {
			runtime.Gosched()
		}
	}
	return c.Context.Err()
}

// EventAnchor's read and its sync are one call for Shutdown: a Shutdown
// that begins once the call was admitted waits for both, and the call
// returns its anchor, durable, rather than ErrClosed from the sync.
func TestEventAnchorIsOneCallForShutdown(t *testing.T) {
	fs := vfs.NewCrashableMem()
	opts := strata.Options{Path: "db", FS: fs, Durability: strata.DurabilityBatched, SyncInterval: time.Hour, MaxPendingCommits: 1 << 20}
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	run := strata.NewRunID()
	for i := range 3 {
		_, err := db.AppendEvent(ctx, run, "e", evPayload(0, i))
		require.NoError(t, err)
	}
	// Look 1 admits the call; Shutdown begins at look 2, as the read
	// transaction begins.
	c := &shutdownAtLook{Context: context.Background(), db: db, n: 2, shutdown: make(chan error, 1)}
	anchor, err := db.EventAnchor(c, run)
	require.NoError(t, err)
	require.Equal(t, uint64(2), anchor.Sequence)
	require.NoError(t, <-c.shutdown)
	_, err = db.EventAnchor(ctx, run)
	require.ErrorIs(t, err, strata.ErrClosed, "a call after Shutdown began is refused")
	require.NoError(t, reopenAfterCrashAndVerify(t, fs, opts, db, run, anchor).Close())
}

// reopenAfterCrashAndVerify crashes fs, losing everything unsynced, closes
// db, opens the crashed copy with opts and checks run's log against anchor.
// It returns the reopened database.
func reopenAfterCrashAndVerify(t *testing.T, fs *vfs.MemFS, opts strata.Options, db *strata.Database, run strata.RunID, anchor events.Anchor) *strata.Database {
	t.Helper()
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	require.NoError(t, db.Close())
	opts.FS = crashed
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	v, err := db.VerifyEvents(ctx, run, &anchor)
	require.NoError(t, err)
	require.True(t, v.Valid, "%+v", v)
	return db
}

func eventCrashOnce(t *testing.T, mode strata.DurabilityMode, unsyncedPct int) {
	fs := vfs.NewCrashableMem()
	opts := strata.Options{Path: "db", FS: fs, Durability: mode, SyncInterval: 2 * time.Millisecond, MaxPendingCommits: 50}
	db, err := strata.OpenWith(opts)
	require.NoError(t, err)
	run := strata.NewRunID()

	var mu sync.Mutex
	acked := map[uint64]strata.Event{}
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				var evs []strata.Event
				var err error
				if g == 3 { // one writer appends batches of 3
					evs, err = db.AppendEvents(ctx, run, []strata.EventData{
						{Type: "crash", Payload: evPayload(g, 3*i)},
						{Type: "crash", Payload: evPayload(g, 3*i+1)},
						{Type: "crash", Payload: evPayload(g, 3*i+2)},
					})
				} else {
					var e strata.Event
					e, err = db.AppendEvent(ctx, run, "crash", evPayload(g, i))
					evs = []strata.Event{e}
				}
				if err != nil {
					return // closed under us
				}
				mu.Lock()
				for _, e := range evs {
					acked[e.Sequence] = e
				}
				mu.Unlock()
				count.Add(int64(len(evs)))
			}
		})
	}
	waitFor := func(n int64) {
		for count.Load() < n {
			time.Sleep(50 * time.Microsecond)
		}
	}
	waitFor(150)
	flushed, err := db.Flush(ctx)
	require.NoError(t, err)
	waitFor(300)
	durable := max(flushed, db.DurableVersion())
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPct, RNG: rand.New(rand.NewPCG(11, uint64(unsyncedPct)))})
	stop.Store(true)
	wg.Wait()
	require.NoError(t, db.Close())

	// Every append acknowledged at or below the durable version must
	// survive; sequences follow versions in a run, so the log keeps at
	// least the prefix up to the last of them.
	var mustLen uint64
	for seq, e := range acked {
		if e.Version <= durable {
			mustLen = max(mustLen, seq+1)
		}
	}
	require.NotZero(t, mustLen)
	require.Len(t, acked, int(count.Load()))

	opts.FS = crashed
	db, err = strata.OpenWith(opts)
	require.NoError(t, err, "a crashed database reopens")
	defer db.Close()
	n, err := db.EventLen(ctx, run)
	require.NoError(t, err)
	t.Logf("appended %d, durable prefix %d, recovered %d", len(acked), mustLen, n)
	require.GreaterOrEqual(t, n, mustLen, "an append at or below the durable version was lost")
	require.LessOrEqual(t, n, uint64(len(acked)))
	stored := requireValidChain(t, db, run, n)
	for _, e := range stored {
		want, ok := acked[e.Sequence]
		require.True(t, ok, "recovered event %d was never acknowledged", e.Sequence)
		requireSameEvent(t, want, e)
	}

	// Appending continues the recovered chain.
	e, err := db.AppendEvent(ctx, run, "after-crash", evPayload(9, 0))
	require.NoError(t, err)
	require.Equal(t, n, e.Sequence)
	if n > 0 {
		require.Equal(t, stored[n-1].Hash, e.PrevHash)
	}
	requireValidChain(t, db, run, n+1)
}

// --- version GC ---

func TestEventKeysSurviveVersionGC(t *testing.T) {
	db, run := openTxnDB(t)
	for i := range 20 {
		// Every commit also rewrites a KV key and a state cell, so GC has
		// old versions to remove in the same run.
		err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
			if err := tx.Put([]byte("k"), value.Int(int64(i))); err != nil {
				return err
			}
			if _, err := tx.StateSet("cell", value.Int(int64(i))); err != nil {
				return err
			}
			_, err := tx.AppendEvent("gc", evPayload(0, i))
			return err
		})
		require.NoError(t, err)
	}
	before := requireValidChain(t, db, run, 20)
	anchor, err := db.EventAnchor(ctx, run)
	require.NoError(t, err)

	require.NoError(t, db.SetRetention(ctx, run, strata.KeepLast(1)))
	st, err := db.GC(ctx, run)
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.Removed, int64(2*19), "old KV and state versions are removed")

	after := requireValidChain(t, db, run, 20)
	for i := range before {
		requireSameEvent(t, before[i], after[i])
	}
	v, err := db.VerifyEvents(ctx, run, &anchor)
	require.NoError(t, err)
	require.Equal(t, events.Verification{Valid: true, Length: 20}, v)
	e, err := db.AppendEvent(ctx, run, "gc", evPayload(0, 20))
	require.NoError(t, err)
	require.Equal(t, uint64(20), e.Sequence)
	require.Equal(t, before[19].Hash, e.PrevHash)
	requireValidChain(t, db, run, 21)
}

// An event batch that does not fit in the transaction's size limit is not
// buffered at all: neither its events nor the head that would follow them.
func TestEventAppendAtTheTransactionSizeLimit(t *testing.T) {
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	// An append of type "t" with an empty object writes an 8-byte event key
	// with a 78-byte record, and the 10-byte head key with its 42 bytes.
	const appendSize = 8 + 78 + 10 + 42
	for _, room := range []int{appendSize - 1, appendSize} {
		tx, err := db.Begin(ctx, run)
		require.NoError(t, err)
		defer tx.End() // a failed assertion must not leave Close waiting for it
		big := make([]byte, strata.MaxValueSize)
		for i := range 3 {
			require.NoError(t, tx.Put([]byte{'k', byte('0' + i)}, value.Bytes(big)))
		}
		used := 3 * (2 + strata.MaxValueSize)
		require.NoError(t, tx.Put([]byte("k3"), value.Bytes(make([]byte, strata.MaxTxnSize-room-used-2))))
		_, err = tx.AppendEvent("t", value.Object(nil))
		n, lerr := tx.EventLen()
		require.NoError(t, lerr)
		if room < appendSize {
			require.ErrorIs(t, err, strata.ErrTxnTooLarge)
			require.Zero(t, n, "nothing of the refused append is buffered")
			_, err = tx.Commit()
			require.ErrorIs(t, err, strata.ErrTxnTooLarge, "and the transaction cannot commit")
			_, err = tx.AppendEvent("t", value.Object(nil))
			require.ErrorIs(t, err, strata.ErrTxnDone, "once ended, every write reports that first")
		} else {
			require.NoError(t, err)
			require.Equal(t, uint64(1), n)
		}
		tx.End()
	}
}

// A direct event batch is one commit, held to MaxTxnSize like a
// transaction's writes; an event payload over MaxValueSize is an invalid
// event. Neither writes anything.
func TestDirectEventBatchLimits(t *testing.T) {
	db, err := strata.OpenEphemeral()
	require.NoError(t, err)
	defer db.Close()
	run := strata.NewRunID()
	big := value.Object(map[string]value.Value{"b": value.Bytes(make([]byte, 14<<20))})
	batch := make([]strata.EventData, 5) // 70 MiB
	for i := range batch {
		batch[i] = strata.EventData{Type: "big", Payload: big}
	}
	_, err = db.AppendEvents(ctx, run, batch)
	require.ErrorIs(t, err, strata.ErrTxnTooLarge)
	_, err = db.AppendEvents(ctx, run, batch[:4]) // 56 MiB fits
	require.NoError(t, err)

	huge := value.Object(map[string]value.Value{"b": value.Bytes(make([]byte, strata.MaxValueSize))})
	_, err = db.AppendEvent(ctx, run, "huge", huge)
	require.ErrorIs(t, err, events.ErrInvalidEvent)
	require.ErrorIs(t, err, strata.ErrInvalidValue)
	n, err := db.EventLen(ctx, run)
	require.NoError(t, err)
	require.Equal(t, uint64(4), n, "only the batch that fit was appended")
}
