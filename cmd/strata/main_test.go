package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemoAndInfo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	for _, mode := range []string{"none", "batched", "strict"} {
		var out bytes.Buffer
		root := newRoot()
		root.SetOut(&out)
		root.SetArgs([]string{"demo", "--db", dir, "--fresh", "-n", "300", "--mode", mode})
		require.NoError(t, root.Execute(), out.String())
		require.Contains(t, out.String(), "all 300 keys verified, event chain verified against the anchor")
	}
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetArgs([]string{"info", "--db", dir})
	require.NoError(t, root.Execute())
	// 300 puts, 100 CAS, 1 delete, 1 batch of 10 events, a state init and a
	// transition.
	require.True(t, strings.Contains(out.String(), "current version  404"), out.String())

	root = newRoot()
	root.SetArgs([]string{"demo", "--db", dir, "--mode", "async"})
	require.Error(t, root.Execute(), "an unknown mode is refused")
}
