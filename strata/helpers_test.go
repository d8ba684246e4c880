package strata

import (
	"context"
	"testing"

	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/mvcc"
	"github.com/stretchr/testify/require"
)

type mvccWriteForTest struct{ key []byte }

// commitMany commits several keys of run in one commit, through the same
// path the transactions of the next layer use.
func commitMany(t *testing.T, db *Database, run RunID, ws []mvccWriteForTest) uint64 {
	t.Helper()
	var writes []mvcc.Write
	for _, w := range ws {
		writes = append(writes, mvcc.Write{Run: run, Tag: keyenc.TagKV, Key: w.key, Kind: keyenc.KindBytes, Payload: []byte("x")})
	}
	res, err := db.commit(context.Background(), run, writes, nil, db.DurabilityMode())
	require.NoError(t, err)
	return res.version
}

func recoveredKeys(t *testing.T, db *Database, run RunID) []string {
	t.Helper()
	var out []string
	for e, err := range db.store.Scan(keyenc.RunID(run), keyenc.TagKV, nil, nil, db.store.Visible()) {
		require.NoError(t, err)
		out = append(out, string(e.Key))
	}
	return out
}
