package harness

import (
	"encoding/binary"
	"math/rand/v2"
)

// Sizes of the generated inputs.
const (
	// KeySize is the length of every key, in bytes.
	KeySize = 16
	// ValueSize is the length of every value, in bytes.
	ValueSize = 100
	// valueSlab bounds the random bytes behind one goroutine's values. Values
	// are disjoint 100-byte windows of the slab, reused only after ~10k ops,
	// far apart enough that block compression cannot exploit the repeats.
	valueSlab = 1 << 20
)

// newRand returns a deterministic generator for one stream of one rep.
func newRand(stream uint64, rep, g int) *rand.ChaCha8 {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], stream)
	binary.LittleEndian.PutUint64(seed[8:], uint64(rep))
	binary.LittleEndian.PutUint64(seed[16:], uint64(g))
	return rand.NewChaCha8(seed)
}

// Streams of newRand, so that different inputs never share random bytes.
const (
	streamWriteKeys uint64 = iota + 1
	streamValues
	streamLoadKeys
	streamLoadValues
	streamReadIndexes
	streamTxnIndexes
	streamTxnValues
)

// randomBytes returns n random bytes from r.
func randomBytes(r *rand.ChaCha8, n int) []byte {
	b := make([]byte, n)
	_, _ = r.Read(b) // ChaCha8.Read never fails
	return b
}

// valueSource hands out 100-byte random values.
type valueSource []byte

func newValueSource(r *rand.ChaCha8, ops int) valueSource {
	return valueSource(randomBytes(r, min(ops, valueSlab/ValueSize)*ValueSize))
}

// value returns value i, aliasing the slab. Callers never modify it.
func (s valueSource) value(i int) []byte {
	j := i % (len(s) / ValueSize) * ValueSize
	return s[j : j+ValueSize : j+ValueSize]
}

// writeInputs are the keys and values of one rep of a write workload: a
// fresh random key for every operation of every goroutine.
type writeInputs struct {
	keys [][]byte // per goroutine, OpsPerGoroutine keys back to back
	vals []valueSource
}

func newWriteInputs(p Plan) *writeInputs {
	in := &writeInputs{keys: make([][]byte, p.Goroutines), vals: make([]valueSource, p.Goroutines)}
	for g := range p.Goroutines {
		in.keys[g] = randomBytes(newRand(streamWriteKeys, p.Rep, g), p.OpsPerGoroutine*KeySize)
		in.vals[g] = newValueSource(newRand(streamValues, p.Rep, g), p.OpsPerGoroutine)
	}
	return in
}

// kv returns the key and value of operation i of goroutine g.
func (in *writeInputs) kv(g, i int) (key, val []byte) {
	k := in.keys[g][i*KeySize : (i+1)*KeySize : (i+1)*KeySize]
	return k, in.vals[g].value(i)
}

// keySet is a fixed set of distinct random keys, loaded into a store that
// read workloads then query.
type keySet struct {
	keys []byte // n keys back to back
	vals valueSource
}

func newKeySet(n int) *keySet {
	// Among a few million 16-byte random keys a collision is vanishingly
	// unlikely, so every key is distinct.
	return &keySet{
		keys: randomBytes(newRand(streamLoadKeys, 0, 0), n*KeySize),
		vals: newValueSource(newRand(streamLoadValues, 0, 0), n),
	}
}

func (s *keySet) len() int { return len(s.keys) / KeySize }

func (s *keySet) key(i int) []byte { return s.keys[i*KeySize : (i+1)*KeySize : (i+1)*KeySize] }

// readIndexes returns, per goroutine, a uniform random key index for every
// operation of the rep.
func (s *keySet) readIndexes(p Plan) [][]uint32 {
	out := make([][]uint32, p.Goroutines)
	n := uint64(s.len())
	for g := range out {
		r := newRand(streamReadIndexes, p.Rep, g)
		idx := make([]uint32, p.OpsPerGoroutine)
		for i := range idx {
			idx[i] = uint32(r.Uint64() % n)
		}
		out[g] = idx
	}
	return out
}
