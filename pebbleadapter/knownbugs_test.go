package pebbleadapter_test

import (
	"errors"
	"fmt"
	"github.com/strata-db/strata/internal/testutil"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/stretchr/testify/require"
)

// knownBug skips a test that pins down a known bug in non-test code unless
// STRATA_KNOWN_BUGS=1, so that the suite stays green while the bug is open
// and the failing test is one environment variable away.
func knownBug(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("STRATA_KNOWN_BUGS") != "1" {
		t.Skipf("known bug (run with STRATA_KNOWN_BUGS=1 to see it fail): %s", what)
	}
}

// Writes that reach the adapter after its WAL failed (operations admitted by
// the gate before the failure, still running) must fail with ErrFailed,
// never crash the process, and must not wedge Close.
//
// Pebble's LogWriter keeps the flusher's error and, once a WAL block fills
// (32 KiB), the next write panics in DB.commitWrite while holding the commit
// pipeline's mutex. Batch.Apply therefore refuses every write once a failure
// is recorded, without calling Pebble.
func TestWritesAfterWALFailureAreRefused(t *testing.T) {
	var armed atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && isWALSync(op) {
			return errorfs.ErrInjected
		}
		return nil
	})
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: errorfs.Wrap(vfs.NewMem(), inj)})
	require.NoError(t, err)

	armed.Store(true)
	b := db.NewBatch()
	b.Set(keyenc.AppendVersioned(nil, keyenc.RunID{7}, keyenc.TagKV, []byte("k"), 1), []byte("v"))
	require.NoError(t, b.Apply(true))
	require.ErrorIs(t, b.SyncWait(), serr.ErrFailed)
	b.Close()

	// Ten in-flight writes of 10 KiB each: more than a WAL block.
	value := make([]byte, 10<<10)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("Batch.Apply panicked: %v", r)
			}
		}()
		for i := range 10 {
			b := db.NewBatch()
			b.Set(keyenc.AppendVersioned(nil, keyenc.RunID{7}, keyenc.TagKV, []byte(fmt.Sprint(i)), 1), value)
			if err := b.Apply(false); !errors.Is(err, serr.ErrFailed) {
				done <- fmt.Errorf("write %d after the failure returned %v", i, err)
				return
			}
			b.Close()
		}
		done <- nil
	}()
	require.NoError(t, testutil.WaitFor(t, done))

	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs: Pebble's commit pipeline is wedged") // leaks the DB
	}
}

// A WAL write failure (say, a full disk) under nosync writes must surface as
// ErrFailed, at the latest at the next sync barrier, and must never end the
// process.
//
// What happens today: nosync Applies keep succeeding for a while (the WAL
// flusher's error is reported to no one until a sync is requested), and the
// adapter's Fatalf hook is never reached. Then Pebble panics on the
// committing goroutine, in one of two ways (both seen with this test):
//   - LogWriter copies the flusher's error to LogWriter.err when a WAL block
//     fills; the next WriteRecord returns it and DB.commitWrite (pebble
//     db.go, "panic(err)") panics. Batch.Apply does not recover it, so it
//     ends the process.
//   - when the memtable fills, DB.rotateWAL closes the old WAL, gets the
//     write error and panics after releasing DB.mu; the caller's deferred
//     DB.mu.Unlock then dies with "fatal error: sync: unlock of unlocked
//     mutex", which no recover can stop.
//
// Batch.Apply now recovers the first kind of panic and records the failure;
// the second is a fatal runtime error inside Pebble that nothing outside
// Pebble can stop, so this remains a known limitation of unsynced writes
// (documented in docs/durability.md). Strict commits are not affected: their
// own fsync reports the write error first.
//
// The scenario runs in a child process, since it kills the process.
func TestKnownBugWALWriteFailureUnderNoSyncWritesKillsProcess(t *testing.T) {
	if os.Getenv("STRATA_CRASH_CHILD") == "1" {
		walWriteFailureChild(t)
		return
	}
	knownBug(t, "a WAL write failure under nosync writes ends the process (Pebble panics in commitWrite/rotateWAL)")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKnownBugWALWriteFailureUnderNoSyncWritesKillsProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "STRATA_CRASH_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		t.Fatalf("the child process died (%v):\n%s", err, strings.Join(lines[:min(len(lines), 12)], "\n"))
	}
}

func walWriteFailureChild(t *testing.T) {
	var armed atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && isWALWrite(op) {
			return errorfs.ErrInjected
		}
		return nil
	})
	db, err := pebbleadapter.Open(pebbleadapter.Options{Dir: dir, FS: errorfs.Wrap(vfs.NewMem(), inj)})
	require.NoError(t, err)
	armed.Store(true)
	value := make([]byte, 10<<10)
	failed := false
	for i := range 200 { // 2 MB: several memtable rotations
		b := db.NewBatch()
		b.Set(keyenc.AppendVersioned(nil, keyenc.RunID{7}, keyenc.TagKV, []byte(fmt.Sprint(i)), 1), value)
		err := b.Apply(false)
		b.Close()
		if failed {
			require.ErrorIs(t, err, serr.ErrFailed, "write %d after a failure", i)
		} else if err != nil {
			require.ErrorIs(t, err, serr.ErrFailed)
			failed = true
		}
	}
	require.ErrorIs(t, db.SyncBarrier(), serr.ErrFailed)
	_ = db.Close()
}
