package harness

// txnRing bounds the key indexes drawn per goroutine for one rep of a
// read-write transaction workload. Past it the sequence of keys repeats,
// which matters little: the loaded keys are all hot in every system.
const txnRing = 1 << 20

// rwInputs are the inputs of one rep of a read-write workload: each
// operation touches slots keys of a loaded keySet, drawn uniformly at
// random, and writes the key of its slot 0 with a fresh value. Workloads of
// a group that read different numbers of keys but use the same slots see
// the same written keys.
type rwInputs struct {
	keys  *keySet
	slots int
	idx   [][]uint32 // per goroutine, a ring of key indexes
	vals  []valueSource
}

// newRWInputs draws the inputs of p for operations of slots keys each.
func newRWInputs(keys *keySet, slots int, p Plan) *rwInputs {
	in := &rwInputs{keys: keys, slots: slots, idx: make([][]uint32, p.Goroutines), vals: make([]valueSource, p.Goroutines)}
	n := uint64(keys.len())
	for g := range p.Goroutines {
		r := newRand(streamTxnIndexes, p.Rep, g)
		idx := make([]uint32, min(p.OpsPerGoroutine*slots, txnRing))
		for i := range idx {
			idx[i] = uint32(r.Uint64() % n)
		}
		in.idx[g] = idx
		in.vals[g] = newValueSource(newRand(streamTxnValues, p.Rep, g), p.OpsPerGoroutine)
	}
	return in
}

// key returns the key of slot j of operation i of goroutine g.
func (in *rwInputs) key(g, i, j int) []byte {
	ring := in.idx[g]
	return in.keys.key(int(ring[(i*in.slots+j)%len(ring)]))
}

// value returns the value operation i of goroutine g writes.
func (in *rwInputs) value(g, i int) []byte { return in.vals[g].value(i) }
