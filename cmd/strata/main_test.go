package main

import (
	"bytes"
	"os"
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

// The commands refuse what could lose or invent data: --fresh deletes only
// a database (or an empty directory), info never creates one, and bad
// arguments are errors.
func TestCommandsRefuseBadTargets(t *testing.T) {
	run := func(args ...string) error {
		root := newRoot()
		root.SetOut(&bytes.Buffer{})
		root.SetArgs(args)
		return root.Execute()
	}
	base := t.TempDir()
	other := filepath.Join(base, "other")
	require.NoError(t, os.MkdirAll(other, 0o755))
	notes := filepath.Join(other, "notes.txt")
	require.NoError(t, os.WriteFile(notes, []byte("keep me"), 0o644))
	require.ErrorContains(t, run("demo", "--db", other, "--fresh", "-n", "10"), "refusing")
	require.FileExists(t, notes, "--fresh left a directory without a database alone")
	require.ErrorContains(t, run("demo", "--db", notes, "--fresh", "-n", "10"), "refusing")
	require.FileExists(t, notes)

	missing := filepath.Join(base, "missing")
	require.ErrorContains(t, run("info", "--db", missing), "no database")
	require.NoDirExists(t, missing, "info created nothing")

	require.Error(t, run("demo", "--db", filepath.Join(base, "db"), "extra"))
	require.ErrorContains(t, run("demo", "--db", filepath.Join(base, "db"), "--keys", "-5"), "at least 1")
}
