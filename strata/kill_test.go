package strata_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/durability"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

const (
	killChildEnv = "STRATA_KILL_CHILD_DIR"
	killModeEnv  = "STRATA_KILL_CHILD_MODE"
)

// killRun is the fixed run the kill test writes to.
var killRun = strata.MustParseRunID("0193a6f0-0000-7000-8000-00000000c0de")

func killKey(i uint64) []byte { return fmt.Appendf(nil, "k%010d", i) }

// TestMain lets this test binary double as the child process of the kill
// tests and of TestWALWriteFailureOnARealDisk.
func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir, os.Getenv(killModeEnv)))
	}
	if dir := os.Getenv(fileSizeChildEnv); dir != "" {
		os.Exit(fileSizeChild(dir, os.Getenv(killModeEnv)))
	}
	os.Exit(m.Run())
}

// killChild commits keys i, i+1, ... in a loop, from the first key the
// database does not hold, and prints "a i version" after each acknowledged
// commit, and "d version" whenever the database reports a higher durable
// version, until it is killed.
func killChild(dir, modeName string) int {
	mode, err := durability.ParseMode(modeName)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	db, err := strata.OpenWith(strata.Options{Path: dir, Durability: mode, SyncInterval: 5 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	durable := db.DurableVersion()
	start, err := killKeyCount(db)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	for i := start; ; i++ {
		v, err := db.Put(ctx, killRun, killKey(i), value.Int(int64(i)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child put:", err)
			return 3
		}
		fmt.Fprintf(os.Stdout, "a %d %d\n", i, v)
		if d := db.DurableVersion(); d > durable {
			durable = d
			fmt.Fprintf(os.Stdout, "d %d\n", d)
		}
	}
}

// TestKillNine kills a committing child process with SIGKILL at random
// points, many times on the same directory, and checks after each kill that
// the database reopens and that the recovered keys are exactly a prefix of
// commit order, with nothing lost that the mode promises to keep: in Strict
// every acknowledged commit, in Batched every commit at or below the durable
// version the child saw reported.
func TestKillNine(t *testing.T) {
	for _, c := range []struct {
		mode  strata.DurabilityMode
		kills int
	}{{strata.DurabilityStrict, 25}, {strata.DurabilityBatched, 10}, {strata.DurabilityNone, 10}} {
		t.Run(c.mode.String(), func(t *testing.T) {
			kills := c.kills
			if testing.Short() {
				kills = min(kills, 5)
			}
			killLoop(t, c.mode, kills)
		})
	}
}

func killLoop(t *testing.T, mode strata.DurabilityMode, kills int) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	totalAcked, lostAcked := 0, uint64(0)
	for k := range kills {
		acked, durable := runAndKill(t, dir, mode, time.Duration(5+rng.IntN(150))*time.Millisecond)
		totalAcked += len(acked)

		db, err := strata.OpenWithMode(dir, mode)
		require.NoError(t, err, "kill %d: reopen", k)
		// Prefix: the run holds exactly keys 0..n-1, in commit order.
		n, err := killKeyCount(db)
		require.NoError(t, err, "kill %d", k)
		var prev uint64
		for i := range n {
			got, err := db.Get(ctx, killRun, killKey(i))
			require.NoError(t, err, "kill %d: key %d of %d", k, i, n)
			require.Greater(t, got.Version, prev, "kill %d: key %d: versions follow commit order", k, i)
			prev = got.Version
			if v, ok := acked[i]; ok {
				require.Equal(t, v, got.Version, "kill %d: key %d recovered at another version", k, i)
			}
		}
		require.GreaterOrEqual(t, db.CurrentVersion(), prev, "kill %d: reopened below a recovered version", k)
		var last uint64
		for i, v := range acked {
			last = max(last, i+1)
			switch mode {
			case strata.DurabilityStrict:
				require.Less(t, i, n, "kill %d: acknowledged key %d (version %d) lost (recovered %d keys)", k, i, v, n)
			case strata.DurabilityBatched:
				if v <= durable {
					require.Less(t, i, n, "kill %d: key %d at version %d, at or below durable %d, lost (recovered %d keys)", k, i, v, durable, n)
				}
			}
		}
		lostAcked += last - min(last, n)
		require.NoError(t, db.Close())
	}
	t.Logf("%s: %d kills, %d acknowledged commits, %d acknowledged commits lost in all (allowed in None, and above the durable version in Batched), every reopen succeeded",
		mode, kills, totalAcked, lostAcked)
	if mode == strata.DurabilityStrict {
		require.Zero(t, lostAcked)
	}
}

// killKeyCount returns how many keys the kill run holds, and an error
// unless they are exactly keys 0..n-1.
func killKeyCount(db *strata.Database) (uint64, error) {
	var n uint64
	opts := strata.ListOptions{Limit: 10000}
	for {
		page, err := db.List(ctx, killRun, nil, opts)
		if err != nil {
			return 0, err
		}
		for _, k := range page.Keys {
			if string(k) != string(killKey(n)) {
				return 0, fmt.Errorf("key %d of the run is %q: not a prefix of commit order", n, k)
			}
			n++
		}
		if page.Next == nil {
			return n, nil
		}
		opts.Cursor = page.Next
	}
}

// runAndKill starts the child, waits until it has acknowledged at least one
// commit, lets it run for d more, then SIGKILLs it. It returns the
// acknowledged commits (key index -> version) and the highest durable
// version the child reported.
func runAndKill(t *testing.T, dir string, mode strata.DurabilityMode, d time.Duration) (map[uint64]uint64, uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killModeEnv+"="+mode.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	acked := map[uint64]uint64{}
	var durable uint64
	var mu sync.Mutex
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(out)
		once := sync.Once{}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // EOF; a line without its newline was never acknowledged
			}
			var i, v uint64
			mu.Lock()
			if _, err := fmt.Sscanf(line, "a %d %d\n", &i, &v); err == nil {
				acked[i] = v
			} else if _, err := fmt.Sscanf(line, "d %d\n", &v); err == nil {
				durable = max(durable, v)
			} else {
				t.Errorf("bad line from child: %q", line)
			}
			mu.Unlock()
			once.Do(func() { close(first) })
		}
	}()
	select {
	case <-first:
	case <-done:
		_ = cmd.Wait()
		t.Fatalf("child exited before acknowledging a commit")
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child acknowledged nothing in 30s")
	}
	time.Sleep(d)
	require.NoError(t, cmd.Process.Kill()) // SIGKILL
	<-done
	_ = cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return acked, durable
}
