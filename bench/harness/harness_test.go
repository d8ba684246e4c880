package harness

import (
	"bytes"
	"strings"
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
