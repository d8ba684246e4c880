package strata

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/strata-db/strata/mvcc"
	"github.com/stretchr/testify/require"
)

// kept runs keep over a key's versions, newest first, as mvcc.Store.Prune
// does, and returns how many it keeps (the newest always stays).
func kept(keep func([]byte, int, mvcc.VersionMeta) bool, vs []mvcc.VersionMeta) int {
	n := 0
	for i, v := range vs {
		if !keep(nil, i, v) && i > 0 {
			break
		}
		n++
	}
	return n
}

// The retention policies by their definition: every version above the pin,
// then KeepLast's n versions, or KeepFor's versions at or after the cutoff
// (a prefix, newest first) and one more, the value at the cutoff.
func keptByDefinition(pol Retention, pin uint64, cutoff int64, vs []mvcc.VersionMeta) int {
	newer := 0
	for newer < len(vs) && vs[newer].Version > pin {
		newer++
	}
	var n int
	if pol.Mode == RetainLast {
		n = min(pol.Last, len(vs)) // no overflow for a huge Last
	} else {
		for newer+n < len(vs) && vs[newer+n].Timestamp >= cutoff {
			n++
		}
		n++ // the value at the cutoff
	}
	return max(1, min(len(vs), newer+n))
}

func TestRetentionKeepFollowsThePolicy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for range 20_000 {
		n := 1 + r.IntN(12)
		vs := make([]mvcc.VersionMeta, n) // newest first
		ts := int64(1000)
		backwards := r.IntN(3) == 0 // a clock that went back: timestamps out of order
		for i := range vs {
			vs[i] = mvcc.VersionMeta{Version: uint64(100 - i)}
			if backwards {
				vs[i].Timestamp = int64(r.IntN(1000))
			} else {
				ts -= int64(r.IntN(100))
				vs[i].Timestamp = ts
			}
		}
		pin := uint64(90 + r.IntN(12))
		cutoff := int64(r.IntN(1100))
		for _, pol := range []Retention{KeepLast(1 + r.IntN(4)), KeepLast(math.MaxInt), KeepFor(1)} {
			got := kept(retentionKeep(pol, pin, cutoff), vs)
			require.Equal(t, keptByDefinition(pol, pin, cutoff, vs), got, "policy %+v, pin %d, cutoff %d, versions %+v", pol, pin, cutoff, vs)
		}
	}
}
