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

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

const killChildEnv = "STRATA_KILL_CHILD_DIR"

// killRun is the fixed run the kill test writes to.
var killRun = strata.MustParseRunID("0193a6f0-0000-7000-8000-00000000c0de")

func killKey(i uint64) []byte { return fmt.Appendf(nil, "k%010d", i) }

// TestMain lets this test binary double as the child process of
// TestKillNineStrict.
func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir))
	}
	os.Exit(m.Run())
}

// killChild commits key i at version i+1 in a loop, in Strict mode, and
// prints "i version" after each acknowledged commit, until it is killed.
func killChild(dir string) int {
	db, err := strata.OpenWithMode(dir, strata.DurabilityStrict)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	for i := db.CurrentVersion(); ; i++ {
		v, err := db.Put(ctx, killRun, killKey(i), value.Int(int64(i)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child put:", err)
			return 3
		}
		fmt.Fprintf(os.Stdout, "%d %d\n", i, v)
	}
}

// TestKillNineStrict kills a committing child process with SIGKILL at
// random points and checks, after each kill, that the database reopens,
// that no acknowledged commit was lost, and that the recovered state is a
// prefix of commit order.
func TestKillNineStrict(t *testing.T) {
	kills := 25
	if testing.Short() {
		kills = 10
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	totalAcked, maxLost := 0, uint64(0)
	for k := range kills {
		acked := runAndKill(t, dir, time.Duration(5+rng.IntN(150))*time.Millisecond)
		totalAcked += len(acked)

		db, err := strata.OpenWithMode(dir, strata.DurabilityStrict)
		require.NoError(t, err, "kill %d: reopen", k)
		n := db.CurrentVersion()
		for i, v := range acked {
			require.Equal(t, i+1, v, "single writer: key i commits at version i+1")
			require.LessOrEqual(t, v, n, "kill %d: acknowledged version %d lost (recovered %d)", k, v, n)
		}
		// Prefix: keys 0..n-1 exist at versions 1..n; nothing above.
		for i := uint64(0); i < n; i++ {
			got, err := db.Get(ctx, killRun, killKey(i))
			require.NoError(t, err, "kill %d: hole at key %d of %d", k, i, n)
			require.Equal(t, i+1, got.Version)
		}
		_, err = db.Get(ctx, killRun, killKey(n))
		require.ErrorIs(t, err, strata.ErrNotFound)
		var last uint64
		for _, v := range acked {
			last = max(last, v)
		}
		maxLost = max(maxLost, n-min(n, last))
		require.NoError(t, db.Close())
	}
	t.Logf("%d kills, %d acknowledged commits, 0 lost; recovered up to %d unacknowledged commits past the last ack", kills, totalAcked, maxLost)
}

// runAndKill starts the child, waits until it has acknowledged at least one
// commit, lets it run for d more, then SIGKILLs it and returns its
// acknowledged commits (key index -> version).
func runAndKill(t *testing.T, dir string, d time.Duration) map[uint64]uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	acked := map[uint64]uint64{}
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
			if _, err := fmt.Sscanf(line, "%d %d\n", &i, &v); err != nil {
				t.Errorf("bad line from child: %q", line)
				continue
			}
			mu.Lock()
			acked[i] = v
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
	return acked
}
