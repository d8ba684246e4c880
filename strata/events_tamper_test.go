package strata_test

// Tamper evidence of the event log (contract §6): stored bytes are edited
// through raw Pebble, not through the API, and verification must name the
// first bad sequence and the reason.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// The tampered database: run A has tamperLenA events, run B tamperLenB,
// appended one commit each and interleaved.
const (
	tamperLenA = 10
	tamperLenB = 6
	tamperDir  = "db"
)

// tamperDB is a closed database on a MemFS with two runs' logs, and what the
// API returned when they were appended.
type tamperDB struct {
	fs       vfs.FS
	a, b     strata.RunID
	evA, evB []strata.Event
	anchorA  events.Anchor // EventAnchor of A before any tamper: sequence 9
	anchorB  events.Anchor
}

// tamperPayload has a string whose content can be flipped without breaking
// the encoding.
func tamperPayload(run string, i int) value.Value {
	return value.Object(map[string]value.Value{
		"i":    value.Int(int64(i)),
		"note": value.String(fmt.Sprintf("%s-event-%02d", run, i)),
	})
}

func newTamperDB(t *testing.T) *tamperDB {
	t.Helper()
	f := &tamperDB{fs: vfs.NewMem(), a: strata.NewRunID(), b: strata.NewRunID()}
	db, err := strata.OpenWith(strata.Options{Path: tamperDir, FS: f.fs})
	require.NoError(t, err)
	for i := range tamperLenA {
		e, err := db.AppendEvent(ctx, f.a, "order.placed", tamperPayload("a", i))
		require.NoError(t, err)
		f.evA = append(f.evA, e)
		if i < tamperLenB {
			e, err := db.AppendEvent(ctx, f.b, "order.placed", tamperPayload("b", i))
			require.NoError(t, err)
			f.evB = append(f.evB, e)
		}
	}
	f.anchorA, err = db.EventAnchor(ctx, f.a)
	require.NoError(t, err)
	require.Equal(t, events.Anchor{Run: f.a, Sequence: tamperLenA - 1, Hash: f.evA[tamperLenA-1].Hash}, f.anchorA)
	f.anchorB, err = db.EventAnchor(ctx, f.b)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	return f
}

// quietPebble keeps raw Pebble's log lines out of the test output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// edit opens the closed database with raw Pebble and Strata's comparer and
// runs fn on it.
func (f *tamperDB) edit(t *testing.T, fn func(r *rawStore)) {
	t.Helper()
	pdb, err := pebble.Open(tamperDir, &pebble.Options{
		FS: f.fs, Comparer: pebbleadapter.Comparer, FormatMajorVersion: pebble.FormatNewest, Logger: quietPebble{},
	})
	require.NoError(t, err)
	fn(&rawStore{t: t, pdb: pdb})
	require.NoError(t, pdb.Close())
}

// open opens the database with Strata; it is closed at the end of the test.
func (f *tamperDB) open(t *testing.T) *strata.Database {
	t.Helper()
	db, err := strata.OpenWith(strata.Options{Path: tamperDir, FS: f.fs})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// rawStore edits Strata's stored bytes directly.
type rawStore struct {
	t   *testing.T
	pdb *pebble.DB
}

type rawKV struct{ key, value []byte }

var headKey = []byte("event-head")

func eventUserKey(seq uint64) []byte {
	var k [8]byte
	for i := range 8 {
		k[i] = byte(seq >> (56 - 8*i))
	}
	return k[:]
}

// versions returns every stored version of (run, tag, userKey), newest
// first.
func (r *rawStore) versions(run strata.RunID, tag keyenc.Tag, userKey []byte) []rawKV {
	r.t.Helper()
	lower := keyenc.AppendPrefix(nil, keyenc.RunID(run), tag, userKey)
	upper := keyenc.ImmediateSuccessor(nil, lower)
	it, err := r.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	require.NoError(r.t, err)
	var out []rawKV
	for valid := it.First(); valid; valid = it.Next() {
		d, err := keyenc.DecodeDataKey(it.Key())
		require.NoError(r.t, err)
		require.Equal(r.t, userKey, d.UserKey)
		v, err := it.ValueAndErr()
		require.NoError(r.t, err)
		out = append(out, rawKV{bytes.Clone(it.Key()), bytes.Clone(v)})
	}
	require.NoError(r.t, it.Close())
	for i := 1; i < len(out); i++ {
		require.Greater(r.t, keyenc.Version(out[i-1].key), keyenc.Version(out[i].key), "newest version first")
	}
	return out
}

// newest returns the newest stored version of (run, tag, userKey) and its
// header and payload.
func (r *rawStore) newest(run strata.RunID, tag keyenc.Tag, userKey []byte) (key, header, payload []byte) {
	r.t.Helper()
	vs := r.versions(run, tag, userKey)
	require.NotEmpty(r.t, vs, "no stored version of %q", userKey)
	h, _, err := keyenc.DecodeHeader(vs[0].value)
	require.NoError(r.t, err)
	require.Equal(r.t, keyenc.KindBytes, h.Kind)
	return vs[0].key, vs[0].value[:keyenc.HeaderLen], vs[0].value[keyenc.HeaderLen:]
}

// record returns the stored record of event seq of run. An event key has
// exactly one version: events are never rewritten.
func (r *rawStore) record(run strata.RunID, seq uint64) []byte {
	r.t.Helper()
	require.Len(r.t, r.versions(run, keyenc.TagEvent, eventUserKey(seq)), 1, "event %d", seq)
	_, _, rec := r.newest(run, keyenc.TagEvent, eventUserKey(seq))
	return rec
}

// setNewest overwrites the newest version of (run, tag, userKey) with
// payload, keeping its key (so its commit version) and its header.
func (r *rawStore) setNewest(run strata.RunID, tag keyenc.Tag, userKey, payload []byte) {
	r.t.Helper()
	key, header, _ := r.newest(run, tag, userKey)
	require.NoError(r.t, r.pdb.Set(key, append(bytes.Clone(header), payload...), pebble.Sync))
}

// setRecord overwrites event seq's record.
func (r *rawStore) setRecord(run strata.RunID, seq uint64, rec []byte) {
	r.t.Helper()
	r.setNewest(run, keyenc.TagEvent, eventUserKey(seq), rec)
}

// setHead overwrites the run's newest head record.
func (r *rawStore) setHead(run strata.RunID, raw []byte) {
	r.t.Helper()
	r.setNewest(run, keyenc.TagRunMeta, headKey, raw)
}

// setStored overwrites the whole stored value (header included) of the
// newest version of (run, tag, userKey), keeping its key.
func (r *rawStore) setStored(run strata.RunID, tag keyenc.Tag, userKey, stored []byte) {
	r.t.Helper()
	key, _, _ := r.newest(run, tag, userKey)
	require.NoError(r.t, r.pdb.Set(key, stored, pebble.Sync))
}

// withHeader returns a stored value: header (version, kind, timestamp 1)
// and payload.
func withHeader(version byte, kind keyenc.Kind, payload []byte) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{version, byte(kind)}, 1), payload...)
}

// requireLogReadsCorrupt checks that every read of run's log reports
// ErrCorruption rather than a partial or empty log.
func requireLogReadsCorrupt(t *testing.T, db *strata.Database, run strata.RunID) {
	t.Helper()
	_, err := db.EventLen(ctx, run)
	require.ErrorIs(t, err, strata.ErrCorruption, "EventLen")
	_, err = db.EventHead(ctx, run)
	require.ErrorIs(t, err, strata.ErrCorruption, "EventHead")
	e, err := db.Event(ctx, run, 1)
	require.ErrorIs(t, err, strata.ErrCorruption, "Event")
	require.Zero(t, e)
	_, err = db.EventRange(ctx, run, 0, 100)
	require.ErrorIs(t, err, strata.ErrCorruption, "EventRange")
	_, err = db.EventRangeReverse(ctx, run, 0, 100)
	require.ErrorIs(t, err, strata.ErrCorruption, "EventRangeReverse")
	evs, err := db.EventsByType(ctx, run, "order.placed")
	require.ErrorIs(t, err, strata.ErrCorruption, "EventsByType returned %d events", len(evs))
	require.Nil(t, evs, "no partial result")
}

// requireAppendsRefused checks that every append path refuses run's log
// with ErrCorruption.
// requireLogUnusable checks that A's tampered log can be neither read nor
// appended to.
func requireLogUnusable(t *testing.T, f *tamperDB, db *strata.Database) {
	t.Helper()
	requireLogReadsCorrupt(t, db, f.a)
	requireAppendsRefused(t, db, f.a)
}

func requireAppendsRefused(t *testing.T, db *strata.Database, run strata.RunID) {
	t.Helper()
	_, err := db.AppendEvent(ctx, run, "x", tamperPayload("a", 10))
	require.ErrorIs(t, err, strata.ErrCorruption, "AppendEvent")
	_, err = db.AppendEvents(ctx, run, []strata.EventData{{Type: "x", Payload: tamperPayload("a", 10)}})
	require.ErrorIs(t, err, strata.ErrCorruption, "AppendEvents")
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		_, err := tx.AppendEvent("x", tamperPayload("a", 10))
		return err
	})
	require.ErrorIs(t, err, strata.ErrCorruption, "Txn.AppendEvent")
}

// event4ReadsCorrupt checks that the reads of run A that reach event 4
// report ErrCorruption.
func event4ReadsCorrupt(t *testing.T, f *tamperDB, db *strata.Database) {
	t.Helper()
	_, err := db.Event(ctx, f.a, 4)
	require.ErrorIs(t, err, strata.ErrCorruption, "Event")
	_, err = db.EventRange(ctx, f.a, 0, 10)
	require.ErrorIs(t, err, strata.ErrCorruption, "EventRange")
	_, err = db.EventsByType(ctx, f.a, "order.placed")
	require.ErrorIs(t, err, strata.ErrCorruption, "EventsByType")
}

// remove deletes every version of (run, tag, userKey).
func (r *rawStore) remove(run strata.RunID, tag keyenc.Tag, userKey []byte) {
	r.t.Helper()
	vs := r.versions(run, tag, userKey)
	require.NotEmpty(r.t, vs)
	for _, kv := range vs {
		require.NoError(r.t, r.pdb.Delete(kv.key, pebble.Sync))
	}
}

// forge builds a record for event seq of run with correct hashes: what
// someone who can write the database and knows the format can do.
func forge(t *testing.T, run strata.RunID, seq uint64, typ string, ts int64, payload value.Value, prev events.Hash) ([]byte, events.Hash) {
	t.Helper()
	p := mustEncodeValue(t, payload)
	e := events.Event{Sequence: seq, Type: typ, Timestamp: ts, PrevHash: prev}
	e.Hash = events.ComputeHash(run, seq, typ, ts, p, prev)
	return events.AppendRecord(nil, &e, p), e.Hash
}

// want is an expected verification: valid with length n, or invalid at
// firstBad for reason.
type want struct {
	valid    bool
	n        uint64 // length when valid
	firstBad uint64
	reason   events.Reason
}

func ok(n uint64) want { return want{valid: true, n: n} }

func bad(firstBad uint64, reason events.Reason) want {
	return want{firstBad: firstBad, reason: reason}
}

// requireVerification asserts v is w, down to the error it turns into.
func requireVerification(t *testing.T, w want, v events.Verification, msg string) {
	t.Helper()
	if w.valid {
		require.Equal(t, events.Verification{Valid: true, Length: w.n}, v, msg)
		require.NoError(t, v.Err())
		return
	}
	require.False(t, v.Valid, "%s: %+v", msg, v)
	require.Equal(t, w.reason, v.Reason, "%s: %v: %s", msg, v.Reason, v.Detail)
	require.Equal(t, w.firstBad, v.FirstBad, "%s: %s", msg, v.Detail)
	require.Equal(t, w.firstBad, v.Length, msg)
	require.NotEmpty(t, v.Detail, msg)
	err := v.Err()
	require.ErrorIs(t, err, strata.ErrCorruption, msg)
	require.ErrorIs(t, err, events.ErrChainInvalid, msg)
	var ce *events.ChainError
	require.ErrorAs(t, err, &ce, msg)
	require.Equal(t, w.firstBad, ce.Seq, msg)
	require.Equal(t, w.reason, ce.Reason, msg)
}

// flipIn flips the lowest bit of the first byte of sub inside rec.
func flipIn(t *testing.T, rec []byte, sub string) {
	t.Helper()
	i := bytes.Index(rec, []byte(sub))
	require.GreaterOrEqual(t, i, 0, "%q not in the record", sub)
	require.Equal(t, -1, bytes.Index(rec[i+1:], []byte(sub)), "%q twice in the record", sub)
	rec[i] ^= 0x01
}

// Event record layout (events/record.go): version, hash version, timestamp
// at 2-9, previous hash at 10-41, hash at 42-73, then type and payload.
const (
	recTimestamp = 2
	recPrevHash  = 10
	recHash      = 42
)

func TestEventTamperDetected(t *testing.T) {
	cases := []struct {
		name string
		edit func(t *testing.T, f *tamperDB, r *rawStore)
		// Expected results without an anchor, with A's anchor taken before
		// the edit (sequence 9), and with an anchor of A's event 6.
		none, anchor9, anchor6 want
		// after, if set, checks reads of the tampered log.
		after func(t *testing.T, f *tamperDB, db *strata.Database)
	}{
		{
			name: "flipped payload byte of event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 4)
				flipIn(t, rec, "a-event-04")
				got, err := events.DecodeRecord(rec)
				require.NoError(t, err, "the edited record still decodes")
				_, err = got.Event(4)
				require.NoError(t, err, "and so does its payload")
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonHash), anchor9: bad(4, events.ReasonHash), anchor6: bad(4, events.ReasonHash),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				e, err := db.Event(ctx, f.a, 4)
				require.NoError(t, err, "reads do not verify; VerifyEvents does")
				note, _ := e.Payload.AsObject()
				require.True(t, value.Equal(value.String("`-event-04"), note["note"]))
			},
		},
		{
			name: "modified type of event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 4)
				flipIn(t, rec, "order.placed")
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonHash), anchor9: bad(4, events.ReasonHash), anchor6: bad(4, events.ReasonHash),
		},
		{
			name: "modified timestamp of event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 4)
				rec[recTimestamp+7] ^= 0x01
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonHash), anchor9: bad(4, events.ReasonHash), anchor6: bad(4, events.ReasonHash),
		},
		{
			name: "modified stored hash of event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 4)
				rec[recHash] ^= 0x80
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonHash), anchor9: bad(4, events.ReasonHash), anchor6: bad(4, events.ReasonHash),
		},
		{
			name: "modified previous hash of event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 4)
				require.Equal(t, f.evA[3].Hash[:], rec[recPrevHash:recPrevHash+32])
				rec[recPrevHash+31] ^= 0x01
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonPrevHash), anchor9: bad(4, events.ReasonPrevHash), anchor6: bad(4, events.ReasonPrevHash),
		},
		{
			name: "modified previous hash of event 0",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 0)
				rec[recPrevHash] = 1
				r.setRecord(f.a, 0, rec)
			},
			none: bad(0, events.ReasonPrevHash), anchor9: bad(0, events.ReasonPrevHash), anchor6: bad(0, events.ReasonPrevHash),
		},
		{
			name: "deleted middle event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.remove(f.a, keyenc.TagEvent, eventUserKey(4))
			},
			none: bad(4, events.ReasonMissing), anchor9: bad(4, events.ReasonMissing), anchor6: bad(4, events.ReasonMissing),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				_, err := db.Event(ctx, f.a, 4)
				require.ErrorIs(t, err, strata.ErrCorruption, "an event missing below the head")
				_, err = db.EventRange(ctx, f.a, 0, 10)
				require.ErrorIs(t, err, strata.ErrCorruption)
				evs, err := db.EventsByType(ctx, f.a, "order.placed")
				require.ErrorIs(t, err, strata.ErrCorruption, "no partial result: %d events", len(evs))
				require.Nil(t, evs)
			},
		},
		{
			name: "deleted event 0",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.remove(f.a, keyenc.TagEvent, eventUserKey(0))
			},
			none: bad(0, events.ReasonMissing), anchor9: bad(0, events.ReasonMissing), anchor6: bad(0, events.ReasonMissing),
		},
		{
			name: "swapped events 4 and 5",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r4, r5 := r.record(f.a, 4), r.record(f.a, 5)
				r.setRecord(f.a, 4, r5)
				r.setRecord(f.a, 5, r4)
			},
			none: bad(4, events.ReasonPrevHash), anchor9: bad(4, events.ReasonPrevHash), anchor6: bad(4, events.ReasonPrevHash),
		},
		{
			// Both have a zero previous hash: only the run id in the hash
			// differs.
			name: "run B's event 0 written over run A's event 0",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setRecord(f.a, 0, r.record(f.b, 0))
			},
			none: bad(0, events.ReasonHash), anchor9: bad(0, events.ReasonHash), anchor6: bad(0, events.ReasonHash),
		},
		{
			// B's event 4 links to B's event 3, not A's: the previous hash
			// is checked before the hash.
			name: "run B's event 4 written over run A's event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setRecord(f.a, 4, r.record(f.b, 4))
			},
			none: bad(4, events.ReasonPrevHash), anchor9: bad(4, events.ReasonPrevHash), anchor6: bad(4, events.ReasonPrevHash),
		},
		{
			name: "run B's event 0 written over run A's event 4",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setRecord(f.a, 4, r.record(f.b, 0))
			},
			none: bad(4, events.ReasonPrevHash), anchor9: bad(4, events.ReasonPrevHash), anchor6: bad(4, events.ReasonPrevHash),
		},
		{
			// A splice whose previous hash is made to fit still fails on
			// the hash, which binds the run and the sequence.
			name: "run B's event 4 over A's event 4 with A's previous hash",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.b, 4)
				copy(rec[recPrevHash:], f.evA[3].Hash[:])
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonHash), anchor9: bad(4, events.ReasonHash), anchor6: bad(4, events.ReasonHash),
		},
		{
			// Truncation together with the head cannot be seen from inside
			// the database; the anchor kept outside sees it.
			name: "tail 7..9 truncated and the head rewritten",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				for seq := uint64(7); seq < 10; seq++ {
					r.remove(f.a, keyenc.TagEvent, eventUserKey(seq))
				}
				r.setHead(f.a, events.AppendHead(nil, events.Head{Len: 7, Hash: f.evA[6].Hash}))
			},
			none: ok(7), anchor9: bad(7, events.ReasonAnchorBeyondEnd), anchor6: ok(7),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				n, err := db.EventLen(ctx, f.a)
				require.NoError(t, err)
				require.Equal(t, uint64(7), n)
			},
		},
		{
			name: "tail 7..9 deleted, head kept",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				for seq := uint64(7); seq < 10; seq++ {
					r.remove(f.a, keyenc.TagEvent, eventUserKey(seq))
				}
			},
			none: bad(7, events.ReasonMissing), anchor9: bad(7, events.ReasonMissing), anchor6: bad(7, events.ReasonMissing),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				// The head says 10: the missing tail is corruption, not a
				// shorter result.
				evs, err := db.EventsByType(ctx, f.a, "order.placed")
				require.ErrorIs(t, err, strata.ErrCorruption, "no partial result: %d events", len(evs))
				_, err = db.EventRange(ctx, f.a, 0, 10)
				require.ErrorIs(t, err, strata.ErrCorruption)
			},
		},
		{
			name: "tail 7..9 rewritten with recomputed hashes",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				prev := f.evA[6].Hash
				for seq := uint64(7); seq < 10; seq++ {
					var rec []byte
					rec, prev = forge(t, f.a, seq, "order.cancelled", f.evA[seq].Timestamp,
						value.Object(map[string]value.Value{"forged": value.Bool(true)}), prev)
					r.setRecord(f.a, seq, rec)
				}
				r.setHead(f.a, events.AppendHead(nil, events.Head{Len: 10, Hash: prev}))
			},
			none: ok(10), anchor9: bad(9, events.ReasonAnchorMismatch), anchor6: ok(10),
		},
		{
			name: "head record corrupt (41 bytes)",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setHead(f.a, events.AppendHead(nil, events.Head{Len: 10, Hash: f.evA[9].Hash})[:41])
			},
			none: bad(0, events.ReasonHeadCorrupt), anchor9: bad(0, events.ReasonHeadCorrupt), anchor6: bad(0, events.ReasonHeadCorrupt),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				_, err := db.EventLen(ctx, f.a)
				require.ErrorIs(t, err, strata.ErrCorruption)
				_, err = db.AppendEvent(ctx, f.a, "x", tamperPayload("a", 10))
				require.ErrorIs(t, err, strata.ErrCorruption, "nothing is appended after a corrupt head")
			},
		},
		{
			name: "head record of an unknown version",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				h := events.AppendHead(nil, events.Head{Len: 10, Hash: f.evA[9].Hash})
				h[0] = 2
				r.setHead(f.a, h)
			},
			none: bad(0, events.ReasonHeadCorrupt), anchor9: bad(0, events.ReasonHeadCorrupt), anchor6: bad(0, events.ReasonHeadCorrupt),
		},
		{
			name: "head removed while events exist",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.remove(f.a, keyenc.TagRunMeta, headKey)
			},
			none: bad(0, events.ReasonHeadMissing), anchor9: bad(0, events.ReasonHeadMissing), anchor6: bad(0, events.ReasonHeadMissing),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				// Sequence 0 is never reused: an append would hide the
				// stored events, so both append paths refuse.
				requireAppendsRefused(t, db, f.a)
				// Nor does any read take the log for an empty one.
				requireLogReadsCorrupt(t, db, f.a)
				require.NoError(t, db.Transaction(ctx, f.b, func(tx *strata.Txn) error {
					_, err := tx.EventLen()
					return err
				}), "run B reads as before")
			},
		},
		{
			// With event 0 gone too, the stored events 1..9 still keep the
			// log from reading as empty or taking sequence 0 (and then 1)
			// again.
			name: "head and event 0 removed while events 1..9 exist",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.remove(f.a, keyenc.TagRunMeta, headKey)
				r.remove(f.a, keyenc.TagEvent, eventUserKey(0))
			},
			none: bad(0, events.ReasonMissing), anchor9: bad(0, events.ReasonMissing), anchor6: bad(0, events.ReasonMissing),
			after: requireLogUnusable,
		},
		{
			// Strata never deletes a head; a tombstone on it must not read
			// as an empty log either, nor let an append reuse sequence 0.
			name: "head deleted by a tombstone while events exist",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setStored(f.a, keyenc.TagRunMeta, headKey, withHeader(keyenc.HeaderVersion, keyenc.KindTombstone, nil))
			},
			none: bad(0, events.ReasonHeadMissing), anchor9: bad(0, events.ReasonHeadMissing), anchor6: bad(0, events.ReasonHeadMissing),
			after: requireLogUnusable,
		},
		{
			name: "head with an unknown value header version",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				_, _, head := r.newest(f.a, keyenc.TagRunMeta, headKey)
				r.setStored(f.a, keyenc.TagRunMeta, headKey, withHeader(2, keyenc.KindBytes, head))
			},
			none: bad(0, events.ReasonHeadCorrupt), anchor9: bad(0, events.ReasonHeadCorrupt), anchor6: bad(0, events.ReasonHeadCorrupt),
			after: requireLogUnusable,
		},
		{
			name: "head stored as a structured value (wrong record kind)",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				_, _, head := r.newest(f.a, keyenc.TagRunMeta, headKey)
				r.setStored(f.a, keyenc.TagRunMeta, headKey, withHeader(keyenc.HeaderVersion, keyenc.KindValue, head))
			},
			none: bad(0, events.ReasonHeadCorrupt), anchor9: bad(0, events.ReasonHeadCorrupt), anchor6: bad(0, events.ReasonHeadCorrupt),
			after: requireLogUnusable,
		},
		{
			name: "event 4 with an unknown value header version",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setStored(f.a, keyenc.TagEvent, eventUserKey(4), withHeader(2, keyenc.KindBytes, r.record(f.a, 4)))
			},
			none: bad(4, events.ReasonCorrupt), anchor9: bad(4, events.ReasonCorrupt), anchor6: bad(4, events.ReasonCorrupt),
			after: event4ReadsCorrupt,
		},
		{
			name: "event 4 with a value shorter than its header",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setStored(f.a, keyenc.TagEvent, eventUserKey(4), []byte{keyenc.HeaderVersion, byte(keyenc.KindBytes), 0, 0, 0})
			},
			none: bad(4, events.ReasonCorrupt), anchor9: bad(4, events.ReasonCorrupt), anchor6: bad(4, events.ReasonCorrupt),
		},
		{
			name: "event 4 stored as a structured value (wrong record kind)",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setStored(f.a, keyenc.TagEvent, eventUserKey(4), withHeader(keyenc.HeaderVersion, keyenc.KindValue, r.record(f.a, 4)))
			},
			none: bad(4, events.ReasonCorrupt), anchor9: bad(4, events.ReasonCorrupt), anchor6: bad(4, events.ReasonCorrupt),
			after: event4ReadsCorrupt,
		},
		{
			name: "head with the wrong hash",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setHead(f.a, events.AppendHead(nil, events.Head{Len: 10, Hash: f.evA[8].Hash}))
			},
			none: bad(9, events.ReasonHeadMismatch), anchor9: bad(9, events.ReasonHeadMismatch), anchor6: bad(9, events.ReasonHeadMismatch),
		},
		{
			// No log reaches 2^64 events: an append after this head would
			// wrap its length to 0. It is refused instead.
			name: "head claiming 2^64-1 events",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setHead(f.a, events.AppendHead(nil, events.Head{Len: math.MaxUint64, Hash: f.evA[9].Hash}))
			},
			none: bad(10, events.ReasonMissing), anchor9: bad(10, events.ReasonMissing), anchor6: bad(10, events.ReasonMissing),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				requireAppendsRefused(t, db, f.a)
				n, err := db.EventLen(ctx, f.a)
				require.NoError(t, err)
				require.Equal(t, uint64(math.MaxUint64), n, "the refused appends wrote nothing")
			},
		},
		{
			name: "events past the head (head rewritten to length 8)",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setHead(f.a, events.AppendHead(nil, events.Head{Len: 8, Hash: f.evA[7].Hash}))
			},
			none: bad(8, events.ReasonBeyondHead), anchor9: bad(8, events.ReasonBeyondHead), anchor6: bad(8, events.ReasonBeyondHead),
			after: requireRolledBackHead(8),
		},
		{
			// The head's newest version removed: the one before it, of 9
			// events, shows through while event 9 is stored.
			name: "newest head version removed",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				require.NoError(t, r.pdb.Delete(r.versions(f.a, keyenc.TagRunMeta, headKey)[0].key, pebble.Sync))
			},
			none: bad(9, events.ReasonBeyondHead), anchor9: bad(9, events.ReasonBeyondHead), anchor6: bad(9, events.ReasonBeyondHead),
			after: requireRolledBackHead(9),
		},
		{
			// A well-formed event 10 written behind the head's back, at an
			// existing commit version so that it is visible.
			name: "forged event 10 past the head",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				key, header, _ := r.newest(f.a, keyenc.TagEvent, eventUserKey(9))
				rec, _ := forge(t, f.a, 10, "order.placed", f.evA[9].Timestamp+1, tamperPayload("a", 10), f.evA[9].Hash)
				d, err := keyenc.DecodeDataKey(key)
				require.NoError(t, err)
				k := keyenc.AppendVersioned(nil, d.Run, d.Tag, eventUserKey(10), d.Version)
				require.NoError(t, r.pdb.Set(k, append(bytes.Clone(header), rec...), pebble.Sync))
			},
			none: bad(10, events.ReasonBeyondHead), anchor9: bad(10, events.ReasonBeyondHead), anchor6: bad(10, events.ReasonBeyondHead),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				requireAppendsRefused(t, db, f.a) // they would write over event 10
				v, err := db.VerifyEvents(ctx, f.a, nil)
				require.NoError(t, err)
				requireVerification(t, bad(10, events.ReasonBeyondHead), v, "after the refused appends")
			},
		},
		{
			name: "undecodable record of event 4 (unknown record version)",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 4)
				rec[0] = 9
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonCorrupt), anchor9: bad(4, events.ReasonCorrupt), anchor6: bad(4, events.ReasonCorrupt),
		},
		{
			name: "undecodable record of event 4 (truncated)",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				r.setRecord(f.a, 4, r.record(f.a, 4)[:50])
			},
			none: bad(4, events.ReasonCorrupt), anchor9: bad(4, events.ReasonCorrupt), anchor6: bad(4, events.ReasonCorrupt),
			after: func(t *testing.T, f *tamperDB, db *strata.Database) {
				_, err := db.Event(ctx, f.a, 4)
				require.ErrorIs(t, err, strata.ErrCorruption)
			},
		},
		{
			name: "undecodable payload of event 4 (not an object)",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 4)
				i := bytes.IndexByte(rec[recHash+32:], 0x08)
				require.GreaterOrEqual(t, i, 0)
				rec[recHash+32+i] = 0x07 // an array tag where the object starts
				r.setRecord(f.a, 4, rec)
			},
			none: bad(4, events.ReasonCorrupt), anchor9: bad(4, events.ReasonCorrupt), anchor6: bad(4, events.ReasonCorrupt),
		},
		{
			name: "first fault wins: event 2 modified, event 6 deleted",
			edit: func(t *testing.T, f *tamperDB, r *rawStore) {
				rec := r.record(f.a, 2)
				flipIn(t, rec, "a-event-02")
				r.setRecord(f.a, 2, rec)
				r.remove(f.a, keyenc.TagEvent, eventUserKey(6))
			},
			none: bad(2, events.ReasonHash), anchor9: bad(2, events.ReasonHash), anchor6: bad(2, events.ReasonHash),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newTamperDB(t)
			f.edit(t, func(r *rawStore) { c.edit(t, f, r) })
			db := f.open(t)
			anchor6 := events.Anchor{Run: f.a, Sequence: 6, Hash: f.evA[6].Hash}
			for _, check := range []struct {
				name   string
				anchor *events.Anchor
				want   want
			}{
				{"no anchor", nil, c.none},
				{"anchor at 9", &f.anchorA, c.anchor9},
				{"anchor at 6", &anchor6, c.anchor6},
			} {
				v, err := db.VerifyEvents(ctx, f.a, check.anchor)
				require.NoError(t, err)
				requireVerification(t, check.want, v, check.name)
			}
			// Run B was not touched.
			v, err := db.VerifyEvents(ctx, f.b, &f.anchorB)
			require.NoError(t, err)
			requireVerification(t, ok(tamperLenB), v, "run B")
			if c.after != nil {
				c.after(t, f, db)
			}
		})
	}
}

// requireRolledBackHead checks run A's log whose head was rolled back to n
// events while later events stay stored: reads go by the head, and no
// append writes over the stored event n (it stays for VerifyEvents to
// report, and its sequence is never reused).
func requireRolledBackHead(n uint64) func(t *testing.T, f *tamperDB, db *strata.Database) {
	return func(t *testing.T, f *tamperDB, db *strata.Database) {
		t.Helper()
		l, err := db.EventLen(ctx, f.a)
		require.NoError(t, err)
		require.Equal(t, n, l)
		_, err = db.Event(ctx, f.a, n)
		require.ErrorIs(t, err, strata.ErrNotFound, "reads go by the head")
		evs, err := db.EventRange(ctx, f.a, 0, 100)
		require.NoError(t, err)
		require.Len(t, evs, int(n))
		requireAppendsRefused(t, db, f.a)
		// A transaction that read the log may still commit other writes.
		err = db.Transaction(ctx, f.a, func(tx *strata.Txn) error {
			if _, err := tx.EventLen(); err != nil {
				return err
			}
			return tx.Put([]byte("k"), value.Int(1))
		})
		require.NoError(t, err)
		v, err := db.VerifyEvents(ctx, f.a, nil)
		require.NoError(t, err)
		requireVerification(t, bad(n, events.ReasonBeyondHead), v, "after the refused appends")
		a, err := db.EventAnchor(ctx, f.a)
		require.NoError(t, err, "the head names a stored event with its hash")
		require.Equal(t, events.Anchor{Run: f.a, Sequence: n - 1, Hash: f.evA[n-1].Hash}, a)
	}
}

// An event planted past the head at a version above the visible one is
// invisible to reads at any snapshot, but an append would still write over
// its key: appends look at every stored version. A transaction's append
// that never commits leaves nothing that lets a later append skip the look.
func TestAppendsRefuseAnEventStoredAboveTheVisibleVersion(t *testing.T) {
	f := newTamperDB(t)
	f.edit(t, func(r *rawStore) {
		key, header, _ := r.newest(f.a, keyenc.TagEvent, eventUserKey(9))
		d, err := keyenc.DecodeDataKey(key)
		require.NoError(t, err)
		rec, _ := forge(t, f.a, 10, "forged", f.evA[9].Timestamp+1, tamperPayload("a", 10), f.evA[9].Hash)
		k := keyenc.AppendVersioned(nil, d.Run, d.Tag, eventUserKey(10), d.Version+1000)
		require.NoError(t, r.pdb.Set(k, append(bytes.Clone(header), rec...), pebble.Sync))
	})
	db := f.open(t)
	require.Less(t, db.CurrentVersion(), f.evA[9].Version+1000, "the planted event is above the visible version")
	tx, err := db.Begin(ctx, f.a)
	require.NoError(t, err)
	seq, err := tx.AppendEvent("x", tamperPayload("a", 10))
	require.NoError(t, err, "the transaction's snapshot does not show the planted event")
	require.Equal(t, uint64(tamperLenA), seq)
	tx.End()
	requireAppendsRefused(t, db, f.a)
	n, err := db.EventLen(ctx, f.a)
	require.NoError(t, err)
	require.Equal(t, uint64(tamperLenA), n, "nothing was appended")
}

// EventAnchor anchors only a hash the log holds: the head's newest event
// must be stored, with the head's hash, which its fields recompute to.
// (The anchor is the trust root of later verifications.)
func TestEventAnchorChecksTheNewestEvent(t *testing.T) {
	for name, edit := range map[string]func(t *testing.T, f *tamperDB, r *rawStore){
		"head one longer than the log": func(t *testing.T, f *tamperDB, r *rawStore) {
			r.setHead(f.a, events.AppendHead(nil, events.Head{Len: tamperLenA + 1, Hash: f.evA[9].Hash}))
		},
		"head of 2^64-1 events": func(t *testing.T, f *tamperDB, r *rawStore) {
			r.setHead(f.a, events.AppendHead(nil, events.Head{Len: math.MaxUint64, Hash: f.evA[9].Hash}))
		},
		"head hash flipped": func(t *testing.T, f *tamperDB, r *rawStore) {
			h := f.evA[9].Hash
			h[0] ^= 1
			r.setHead(f.a, events.AppendHead(nil, events.Head{Len: tamperLenA, Hash: h}))
		},
		"newest event's hash and the head's replaced alike": func(t *testing.T, f *tamperDB, r *rawStore) {
			rec := r.record(f.a, 9)
			rec[recHash] ^= 1
			r.setRecord(f.a, 9, rec)
			var h events.Hash
			copy(h[:], rec[recHash:recHash+32])
			r.setHead(f.a, events.AppendHead(nil, events.Head{Len: tamperLenA, Hash: h}))
		},
		"newest event removed": func(t *testing.T, f *tamperDB, r *rawStore) {
			r.remove(f.a, keyenc.TagEvent, eventUserKey(9))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newTamperDB(t)
			f.edit(t, func(r *rawStore) { edit(t, f, r) })
			db := f.open(t)
			a, err := db.EventAnchor(ctx, f.a)
			require.ErrorIs(t, err, strata.ErrCorruption)
			require.Zero(t, a)
			v, err := db.VerifyEvents(ctx, f.a, nil)
			require.NoError(t, err)
			require.False(t, v.Valid, "verification names the fault")
			b, err := db.EventAnchor(ctx, f.b)
			require.NoError(t, err)
			require.Equal(t, f.anchorB, b, "run B was not touched")
		})
	}
}

// A key under the event tag that is not an 8-byte sequence is corruption
// wherever it sorts, also before sequence 0's key (an empty key, or fewer
// than 8 zero bytes): VerifyEvents reports it rather than skip it.
func TestVerifyEventsSeesKeysBeforeSequenceZero(t *testing.T) {
	for name, userKey := range map[string][]byte{
		"empty":        {},
		"7 zero bytes": make([]byte, 7),
		"1 byte":       {0},
	} {
		t.Run(name, func(t *testing.T) {
			f := newTamperDB(t)
			f.edit(t, func(r *rawStore) {
				key, header, payload := r.newest(f.a, keyenc.TagEvent, eventUserKey(0))
				d, err := keyenc.DecodeDataKey(key)
				require.NoError(t, err)
				k := keyenc.AppendVersioned(nil, d.Run, d.Tag, userKey, d.Version)
				require.NoError(t, r.pdb.Set(k, append(bytes.Clone(header), payload...), pebble.Sync))
			})
			db := f.open(t)
			v, err := db.VerifyEvents(ctx, f.a, nil)
			require.ErrorIs(t, err, strata.ErrCorruption)
			require.Zero(t, v)
			v, err = db.VerifyEvents(ctx, f.b, &f.anchorB)
			require.NoError(t, err)
			requireVerification(t, ok(tamperLenB), v, "run B")
		})
	}
}

func TestEventTamperUntouchedAndAnchors(t *testing.T) {
	f := newTamperDB(t)
	// Open and close raw Pebble without editing: nothing changes.
	f.edit(t, func(r *rawStore) {
		require.Len(t, r.versions(f.a, keyenc.TagRunMeta, headKey), tamperLenA, "one head version per append")
		raw, err := events.DecodeHead(func() []byte { _, _, p := r.newest(f.a, keyenc.TagRunMeta, headKey); return p }())
		require.NoError(t, err)
		require.Equal(t, events.Head{Len: tamperLenA, Hash: f.evA[tamperLenA-1].Hash}, raw)
		for seq := range uint64(tamperLenA) {
			rec, err := events.DecodeRecord(r.record(f.a, seq))
			require.NoError(t, err)
			require.Equal(t, f.evA[seq].Hash, rec.Hash)
			require.Equal(t, f.evA[seq].PrevHash, rec.PrevHash)
			require.Equal(t, f.evA[seq].Timestamp, rec.Timestamp)
			require.Equal(t, mustEncodeValue(t, f.evA[seq].Payload), rec.Payload)
		}
	})
	db := f.open(t)
	for _, c := range []struct {
		name   string
		run    strata.RunID
		anchor *events.Anchor
		want   want
	}{
		{"A without anchor", f.a, nil, ok(tamperLenA)},
		{"A with its anchor", f.a, &f.anchorA, ok(tamperLenA)},
		{"B with its anchor", f.b, &f.anchorB, ok(tamperLenB)},
		{"A with B's anchor", f.a, &f.anchorB, bad(0, events.ReasonAnchorRun)},
		{"B with A's anchor", f.b, &f.anchorA, bad(0, events.ReasonAnchorRun)},
		{"A with an anchor past its end", f.a, &events.Anchor{Run: f.a, Sequence: 10, Hash: f.evA[9].Hash}, bad(10, events.ReasonAnchorBeyondEnd)},
		{"A with a wrong hash at 3", f.a, &events.Anchor{Run: f.a, Sequence: 3, Hash: f.evA[4].Hash}, bad(3, events.ReasonAnchorMismatch)},
		{"empty run with an anchor", strata.NewRunID(), &f.anchorA, bad(0, events.ReasonAnchorRun)},
	} {
		v, err := db.VerifyEvents(ctx, c.run, c.anchor)
		require.NoError(t, err)
		requireVerification(t, c.want, v, c.name)
	}
	empty := strata.NewRunID()
	v, err := db.VerifyEvents(ctx, empty, &events.Anchor{Run: empty, Sequence: 0})
	require.NoError(t, err)
	requireVerification(t, bad(0, events.ReasonAnchorBeyondEnd), v, "empty run with its own anchor")
}

// The records of Strata's own formats (state cells, the retention and GC
// horizon records, besides the event log's) are stored as raw bytes; one
// stored with another kind, or deleted behind Strata's back where Strata
// never deletes, reads as corruption, not as a valid or absent record.
func TestStoredRecordKindsChecked(t *testing.T) {
	setup := func(t *testing.T) *tamperDB {
		f := &tamperDB{fs: vfs.NewMem(), a: strata.NewRunID()}
		db, err := strata.OpenWith(strata.Options{Path: tamperDir, FS: f.fs})
		require.NoError(t, err)
		_, err = db.StateInit(ctx, f.a, "cell", value.Int(1))
		require.NoError(t, err)
		require.NoError(t, db.SetRetention(ctx, f.a, strata.KeepLast(1)))
		for i := range 3 {
			_, err = db.Put(ctx, f.a, []byte("k"), value.Int(int64(i)))
			require.NoError(t, err)
		}
		st, err := db.GC(ctx, f.a)
		require.NoError(t, err)
		require.Positive(t, st.Horizon)
		require.NoError(t, db.Close())
		return f
	}
	t.Run("state cell stored as a structured value", func(t *testing.T) {
		f := setup(t)
		f.edit(t, func(r *rawStore) {
			_, _, rec := r.newest(f.a, keyenc.TagState, []byte("cell"))
			r.setStored(f.a, keyenc.TagState, []byte("cell"), withHeader(keyenc.HeaderVersion, keyenc.KindValue, rec))
		})
		db := f.open(t)
		_, err := db.StateRead(ctx, f.a, "cell")
		require.ErrorIs(t, err, strata.ErrCorruption)
		_, err = db.StateList(ctx, f.a, "")
		require.ErrorIs(t, err, strata.ErrCorruption)
		_, err = db.StateSet(ctx, f.a, "cell", value.Int(2))
		require.ErrorIs(t, err, strata.ErrCorruption)
	})
	t.Run("state cell whose value does not decode", func(t *testing.T) {
		f := setup(t)
		f.edit(t, func(r *rawStore) {
			_, _, rec := r.newest(f.a, keyenc.TagState, []byte("cell"))
			r.setNewest(f.a, keyenc.TagState, []byte("cell"), append(bytes.Clone(rec), 0)) // a trailing byte
		})
		db := f.open(t)
		_, err := db.StateRead(ctx, f.a, "cell")
		require.ErrorIs(t, err, strata.ErrCorruption)
		// A transaction that ignores the failed read cannot commit, as
		// with a KV record that does not decode.
		err = db.Transaction(ctx, f.a, func(tx *strata.Txn) error {
			_, rerr := tx.StateRead("cell")
			require.ErrorIs(t, rerr, strata.ErrCorruption)
			return tx.Put([]byte("derived"), value.Int(1))
		})
		require.ErrorIs(t, err, strata.ErrCorruption)
		_, err = db.Get(ctx, f.a, []byte("derived"))
		require.ErrorIs(t, err, strata.ErrNotFound)
	})
	t.Run("retention record deleted by a tombstone", func(t *testing.T) {
		f := setup(t)
		f.edit(t, func(r *rawStore) {
			r.setStored(f.a, keyenc.TagRunMeta, []byte("retention"), withHeader(keyenc.HeaderVersion, keyenc.KindTombstone, nil))
		})
		db := f.open(t)
		_, err := db.Retention(ctx, f.a)
		require.ErrorIs(t, err, strata.ErrCorruption)
		_, err = db.GC(ctx, f.a)
		require.ErrorIs(t, err, strata.ErrCorruption)
	})
	t.Run("GC horizon stored as a structured value", func(t *testing.T) {
		f := setup(t)
		f.edit(t, func(r *rawStore) {
			_, _, rec := r.newest(f.a, keyenc.TagRunMeta, []byte("gc-horizon"))
			r.setStored(f.a, keyenc.TagRunMeta, []byte("gc-horizon"), withHeader(keyenc.HeaderVersion, keyenc.KindValue, rec))
		})
		db := f.open(t)
		_, err := db.GetAt(ctx, f.a, []byte("k"), 1)
		require.ErrorIs(t, err, strata.ErrCorruption, "the horizon decides whether version 1 is trimmed")
		_, err = db.GC(ctx, f.a)
		require.ErrorIs(t, err, strata.ErrCorruption)
	})
}
