package strata_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"

	"github.com/strata-db/strata/durability"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// fileSizeChildEnv names the directory of TestWALWriteFailureOnARealDisk's
// child process.
const fileSizeChildEnv = "STRATA_FSIZE_CHILD_DIR"

// fileSizeLimit is the child's RLIMIT_FSIZE: a write that would take a file
// past it fails with EFBIG. The child's memtable is larger, so the WAL is
// the first file to reach it.
const fileSizeLimit = 1 << 20

// A WAL write that the kernel refuses, on the real disk, fails the
// database in every durability mode, and the process survives. The child
// process runs with its file size limited (RLIMIT_FSIZE, SIGXFSZ ignored),
// so that once its WAL reaches 1 MiB every write to it fails with EFBIG,
// as a write to a full disk fails with ENOSPC; without the store fence
// (pebbleadapter/fence.go) Pebble panics or dies on a fatal runtime
// error there. The parent then reopens the store without the limit: it
// holds a prefix of the commits, whole, with every commit reported durable.
func TestWALWriteFailureOnARealDisk(t *testing.T) {
	for _, mode := range []strata.DurabilityMode{strata.DurabilityNone, strata.DurabilityBatched, strata.DurabilityStrict} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fileSizeChildEnv+"="+dir, killModeEnv+"="+mode.String())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "the child failed:\n%s", stderr.String())

			acked := make([][]ackedPair, fileSizeWriters)
			var durable uint64
			closed := false
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				var g, i int
				var v uint64
				switch line := sc.Text(); {
				case line == "closed":
					closed = true
				case len(line) > 0 && line[0] == 'a':
					_, err := fmt.Sscanf(line, "a %d %d %d", &g, &i, &v)
					require.NoError(t, err, line)
					acked[g] = append(acked[g], ackedPair{i, v})
				default:
					_, err := fmt.Sscanf(line, "d %d", &durable)
					require.NoError(t, err, line)
				}
			}
			require.True(t, closed, "the child closed the database:\n%s", stderr.String())

			db, err := strata.OpenWith(strata.Options{Path: dir})
			require.NoError(t, err)
			checkPrefix(t, db, fileSizeRun, acked, durable, mode == strata.DurabilityStrict, "reopened")
			require.NoError(t, db.Close())
		})
	}
}

const fileSizeWriters = 4

var fileSizeRun = strata.MustParseRunID("0193a6f0-0000-7000-8000-0000000ef6b1")

// fileSizeChild is TestWALWriteFailureOnARealDisk's child: with its file
// size limited, it commits pairs from fileSizeWriters goroutines until the
// database fails, checks that the failure is the kernel's EFBIG and that
// every call then fails, and prints "a g i version" for each acknowledged
// transaction, "d version" for the durable version and "closed" once Close
// has returned. It exits 0 if all went as it should.
func fileSizeChild(dir, modeName string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		return 2
	}
	mode, err := durability.ParseMode(modeName)
	if err != nil {
		return fail("%v", err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fail("getrlimit: %v", err)
	}
	lim.Cur = fileSizeLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fail("setrlimit: %v", err)
	}
	db, err := strata.OpenWith(strata.Options{Path: dir, Durability: mode, MemTableSize: 8 * fileSizeLimit})
	if err != nil {
		return fail("open: %v", err)
	}
	acked := make([][]ackedPair, fileSizeWriters)
	errs := make([]error, fileSizeWriters)
	var wg sync.WaitGroup
	for g := range fileSizeWriters {
		wg.Go(func() {
			for i := 0; ; i++ {
				v, err := db.TransactionWithVersion(ctx, fileSizeRun, func(tx *strata.Txn) error {
					if err := tx.Put(pairKey(g, i, "a"), value.Bytes(pairValue(g, i))); err != nil {
						return err
					}
					return tx.Put(pairKey(g, i, "b"), value.Bytes(pairValue(g, i)))
				})
				if err != nil {
					errs[g] = err
					return
				}
				acked[g] = append(acked[g], ackedPair{i, v})
			}
		})
	}
	wg.Wait()
	for g, err := range errs {
		if !errors.Is(err, strata.ErrFailed) || !errors.Is(err, syscall.EFBIG) {
			return fail("writer %d stopped with %v, not ErrFailed caused by EFBIG", g, err)
		}
	}
	if _, err := db.Put(ctx, fileSizeRun, []byte("after"), value.Int(1)); !errors.Is(err, strata.ErrFailed) {
		return fail("a Put after the failure returned %v", err)
	}
	w := bufio.NewWriter(os.Stdout)
	for g, pairs := range acked {
		for _, p := range pairs {
			fmt.Fprintf(w, "a %d %d %d\n", g, p.i, p.version)
		}
	}
	fmt.Fprintf(w, "d %d\n", db.DurableVersion())
	if err := db.Close(); !errors.Is(err, strata.ErrFailed) {
		return fail("Close returned %v", err)
	}
	fmt.Fprintln(w, "closed")
	if err := w.Flush(); err != nil {
		return fail("%v", err)
	}
	return 0
}
