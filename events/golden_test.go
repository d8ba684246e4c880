package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strata-db/strata/value"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the package's own functions")

// golden is testdata/golden.json: one event with its inputs and every
// derived byte string, for other implementations to check themselves
// against. docs/events-format.md quotes it.
type golden struct {
	Comment      string `json:"comment"`
	Run          string `json:"run"`
	Sequence     uint64 `json:"sequence"`
	Type         string `json:"type"`
	Timestamp    int64  `json:"timestamp"`
	Payload      string `json:"payload"`
	PrevHash     string `json:"prev_hash"`
	PayloadHex   string `json:"payload_hex"`
	HashInputHex string `json:"hash_input_hex"`
	Hash         string `json:"hash"`
	RecordHex    string `json:"record_hex"`
	HeadHex      string `json:"head_hex"`
}

const goldenPath = "testdata/golden.json"

// The golden event's inputs.
var (
	goldenSeq  uint64 = 7
	goldenType        = "order.placed"
	goldenTS   int64  = 1_700_000_000_123_456_789
)

func goldenPrev() (h Hash) {
	for i := range h {
		h[i] = byte(i)
	}
	return h
}

// goldenPayload has several keys, built out of order, a nested object, an
// array, a negative int, a float, a non-ASCII string, bytes, a bool and a
// null.
func goldenPayload() value.Value {
	return value.Object(map[string]value.Value{
		"ratio":    value.Float(0.25),
		"meta":     value.Object(map[string]value.Value{"tags": value.Array(value.String("new"), value.String("vip")), "note": value.Null(), "gift": value.Bool(true)}),
		"digest":   value.Bytes([]byte{0xde, 0xad, 0xbe, 0xef}),
		"delta":    value.Int(-7),
		"customer": value.String("alice"),
		"city":     value.String("Zürich"),
		"amount":   value.Int(1250),
	})
}

// handPayload is goldenPayload's canonical encoding written out by hand from
// the documented layout, without package value.
func handPayload() []byte {
	var b bytes.Buffer
	be := func(v any) { _ = binary.Write(&b, binary.BigEndian, v) }
	key := func(k string) { b.WriteByte(byte(len(k))); b.WriteString(k) } // lengths < 128: one-byte uvarints
	str := func(s string) { b.WriteByte(0x05); b.WriteByte(byte(len(s))); b.WriteString(s) }

	b.Write([]byte{0x08, 7}) // object, 7 keys, in bytewise order
	key("amount")
	b.WriteByte(0x03)
	be(int64(1250))
	key("city")
	str("Zürich") // 7 bytes: ü is 2
	key("customer")
	str("alice")
	key("delta")
	b.WriteByte(0x03)
	be(int64(-7))
	key("digest")
	b.Write([]byte{0x06, 4, 0xde, 0xad, 0xbe, 0xef})
	key("meta")
	b.Write([]byte{0x08, 3})
	key("gift")
	b.WriteByte(0x02)
	key("note")
	b.WriteByte(0x00)
	key("tags")
	b.Write([]byte{0x07, 2})
	str("new")
	str("vip")
	key("ratio")
	b.WriteByte(0x04)
	be(math.Float64bits(0.25))
	return b.Bytes()
}

// handHashInput is the documented hash input, written out by hand.
func handHashInput(run [16]byte, seq uint64, typ string, ts int64, payload []byte, prev Hash) []byte {
	var b bytes.Buffer
	be := func(v any) { _ = binary.Write(&b, binary.BigEndian, v) }
	be(uint32(len("strata.event")))
	b.WriteString("strata.event")
	b.WriteByte(1)
	b.Write(run[:])
	be(seq)
	be(uint32(len(typ)))
	b.WriteString(typ)
	be(ts)
	be(uint32(len(payload)))
	b.Write(payload)
	b.Write(prev[:])
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	payload := mustEncode(t, goldenPayload())
	prev := goldenPrev()

	if *update {
		e := Event{Sequence: goldenSeq, Type: goldenType, Timestamp: goldenTS, PrevHash: prev}
		e.Hash = ComputeHash(runA, e.Sequence, e.Type, e.Timestamp, payload, e.PrevHash)
		g := golden{
			Comment:      "One event of hash format 1, record format 1, head format 1; see docs/events-format.md. Integers are big-endian; hex is lowercase.",
			Run:          hex.EncodeToString(runA[:]),
			Sequence:     goldenSeq,
			Type:         goldenType,
			Timestamp:    goldenTS,
			Payload:      goldenPayload().String(),
			PrevHash:     prev.String(),
			PayloadHex:   hex.EncodeToString(payload),
			HashInputHex: hex.EncodeToString(handHashInput(runA, goldenSeq, goldenType, goldenTS, payload, prev)),
			Hash:         e.Hash.String(),
			RecordHex:    hex.EncodeToString(AppendRecord(nil, &e, payload)),
			HeadHex:      hex.EncodeToString(AppendHead(nil, Head{Len: goldenSeq + 1, Hash: e.Hash})),
		}
		out, err := json.MarshalIndent(g, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(goldenPath), 0o755))
		require.NoError(t, os.WriteFile(goldenPath, append(out, '\n'), 0o644))
	}

	raw, err := os.ReadFile(goldenPath)
	require.NoError(t, err)
	var g golden
	require.NoError(t, json.Unmarshal(raw, &g))
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		return b
	}

	// The file's inputs are this test's inputs.
	require.Equal(t, runA[:], unhex(g.Run))
	require.Equal(t, goldenSeq, g.Sequence)
	require.Equal(t, goldenType, g.Type)
	require.Equal(t, goldenTS, g.Timestamp)
	require.Equal(t, goldenPayload().String(), g.Payload)
	require.Equal(t, prev[:], unhex(g.PrevHash))

	// The payload: by hand and by package value.
	require.Equal(t, unhex(g.PayloadHex), handPayload())
	require.Equal(t, unhex(g.PayloadHex), payload)

	// The hash: SHA-256 of the hand-built input, and ComputeHash.
	input := handHashInput(runA, goldenSeq, goldenType, goldenTS, handPayload(), prev)
	require.Equal(t, unhex(g.HashInputHex), input)
	sum := sha256.Sum256(input)
	require.Equal(t, unhex(g.Hash), sum[:])
	h := ComputeHash(runA, goldenSeq, goldenType, goldenTS, payload, prev)
	require.Equal(t, g.Hash, h.String())

	// The record: by hand and by AppendRecord, and back.
	var rec bytes.Buffer
	rec.Write([]byte{1, 1})
	_ = binary.Write(&rec, binary.BigEndian, goldenTS)
	rec.Write(prev[:])
	rec.Write(sum[:])
	rec.WriteByte(byte(len(goldenType)))
	rec.WriteString(goldenType)
	rec.Write(handPayload())
	require.Equal(t, unhex(g.RecordHex), rec.Bytes())
	e := Event{Sequence: goldenSeq, Type: goldenType, Timestamp: goldenTS, PrevHash: prev, Hash: h}
	require.Equal(t, unhex(g.RecordHex), AppendRecord(nil, &e, payload))
	r, err := DecodeRecord(unhex(g.RecordHex))
	require.NoError(t, err)
	got, err := r.Event(goldenSeq)
	require.NoError(t, err)
	require.True(t, value.Equal(goldenPayload(), got.Payload))
	require.Equal(t, h, got.Hash)

	// The head after the golden event.
	var head bytes.Buffer
	head.Write([]byte{1, 1})
	_ = binary.Write(&head, binary.BigEndian, goldenSeq+1)
	head.Write(sum[:])
	require.Equal(t, unhex(g.HeadHex), head.Bytes())
	require.Equal(t, unhex(g.HeadHex), AppendHead(nil, Head{Len: goldenSeq + 1, Hash: h}))
}
