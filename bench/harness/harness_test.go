package harness

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tinyConfig runs every group in well under a second: it checks that the
// harness works, never how fast anything is.
func tinyConfig() Config {
	cfg := DefaultConfig()
	cfg.Reps = 1
	cfg.Warmup = 10 * time.Millisecond
	cfg.Duration = 50 * time.Millisecond
	cfg.SyncDuration = 50 * time.Millisecond
	cfg.MaxOps = 20_000
	cfg.MemTableSize = 4 << 20
	cfg.CacheSize = 8 << 20
	cfg.ReadKeys = 5_000
	cfg.ReadCacheSize = 8 << 20
	cfg.TxnKeys = 5_000
	cfg.Settle = 50 * time.Millisecond
	return cfg
}

func TestGroupsRun(t *testing.T) {
	cfg := tinyConfig()
	var results []GroupResult
	for _, g := range Groups() {
		t.Run(g.Name, func(t *testing.T) {
			res, err := Run(g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Systems) < 2 {
				t.Fatalf("%d systems, want at least 2", len(res.Systems))
			}
			for _, s := range res.Systems {
				if len(s.Reps) != cfg.Reps {
					t.Errorf("%s: %d reps, want %d", s.System, len(s.Reps), cfg.Reps)
				}
				for _, r := range s.Reps {
					if r.Ops <= 0 || r.Throughput <= 0 || r.Median <= 0 || r.P99 < r.Median {
						t.Errorf("%s: implausible rep %+v", s.System, r)
					}
				}
			}
			if len(res.Targets) != len(g.Targets) {
				t.Errorf("%d targets evaluated, want %d", len(res.Targets), len(g.Targets))
			}
			if _, ok := res.system(g.Baseline); !ok {
				t.Errorf("no result for the baseline %q", g.Baseline)
			}
			for _, s := range res.Systems {
				// Only the contended workloads count attempts and aborts.
				if counted := g.Name == "txn-contended"; counted != (s.Note != "") {
					t.Errorf("%s: note %q", s.System, s.Note)
				}
			}
			results = append(results, res)
		})
	}

	var md, js bytes.Buffer
	if err := WriteHeader(&md, ReadMachine("test"), cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if err := WriteGroup(&md, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSummary(&md, results); err != nil {
		t.Fatal(err)
	}
	if err := (Report{Machine: ReadMachine("test"), Config: cfg, Groups: results}).WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, g := range results {
		if !strings.Contains(md.String(), "## "+g.Name) {
			t.Errorf("markdown lacks group %s", g.Name)
		}
	}
}

func TestTxnGroupsListed(t *testing.T) {
	names := []string{"txn-put-none", "txn-put-batched", "txn-rmw", "txn-10r1w",
		"txn-strict-8", "txn-strict-64", "txn-contended", "txn-disjoint-runs"}
	gs, err := Lookup(names)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range gs {
		if g.Name != names[i] {
			t.Errorf("group %d is %s, want %s", i, g.Name, names[i])
		}
	}
}

func TestAbortNote(t *testing.T) {
	if got := abortNote([]RepStats{{Ops: 10}}); got != "" {
		t.Errorf("note without counts = %q, want none", got)
	}
	reps := []RepStats{{Attempts: 100, Aborts: 10}, {Attempts: 200, Aborts: 60}, {Attempts: 100, Aborts: 20}}
	want := "abort rate 20.0% [10.0%–30.0%] (aborted/started attempts, 400 attempts timed)"
	if got := abortNote(reps); got != want {
		t.Errorf("abortNote = %q, want %q", got, want)
	}
}

func TestQuantile(t *testing.T) {
	sorted := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}} {
		if got := quantile(sorted, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %v, want 0", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	gs, err := Lookup([]string{"get-1m", "put-none"})
	if err != nil || len(gs) != 2 || gs[0].Name != "get-1m" || gs[1].Name != "put-none" {
		t.Fatalf("Lookup = %v, %v", gs, err)
	}
	if _, err := Lookup([]string{"nope"}); err == nil {
		t.Fatal("Lookup of an unknown group succeeded")
	}
}

// The reference syncer of txn-put-batched syncs once per maxPending
// writes, and on its interval when writes trickle in.
func TestBatchedSyncerSyncs(t *testing.T) {
	var syncs atomic.Int64
	s := startBatchedSyncer(func() error { syncs.Add(1); return nil }, 10, time.Hour)
	waitFor := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); syncs.Load() < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d syncs, want %d", syncs.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for round := int64(1); round <= 3; round++ {
		for range 9 {
			s.wrote()
		}
		time.Sleep(5 * time.Millisecond)
		if got := syncs.Load(); got != round-1 {
			t.Fatalf("%d syncs before the 10th pending write, want %d", got, round-1)
		}
		s.wrote()
		waitFor(round)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	syncs.Store(0)
	s = startBatchedSyncer(func() error { syncs.Add(1); return nil }, 1<<40, time.Millisecond)
	s.wrote()
	waitFor(2)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	syncs.Store(0)
	s = startBatchedSyncer(func() error { syncs.Add(1); return boom }, 1, time.Hour)
	s.wrote()
	waitFor(1)
	if err := s.close(); !errors.Is(err, boom) {
		t.Fatalf("close = %v, want the sync's error", err)
	}
}
