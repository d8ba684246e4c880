package harness

import (
	"fmt"
	"strings"
	"time"
)

// Metric is the statistic a Target bounds.
type Metric uint8

const (
	// MedianLatency is the median per-op latency; a target bounds its ratio
	// from above.
	MedianLatency Metric = iota
	// Throughput is operations per second; a target bounds its ratio from
	// below.
	Throughput
)

// String returns "median" or "throughput".
func (m Metric) String() string {
	if m == Throughput {
		return "throughput"
	}
	return "median"
}

// MarshalText encodes m as its String, for JSON.
func (m Metric) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Target bounds the ratio of one system's statistic to another's, each the
// median across reps.
type Target struct {
	// System is the system under test, "strata".
	System string `json:"system"`
	// Against is the system it is compared with.
	Against string `json:"against"`
	// Metric is the statistic compared.
	Metric Metric `json:"metric"`
	// Bound is the largest allowed latency ratio, or the smallest allowed
	// throughput ratio.
	Bound float64 `json:"bound"`
}

// String describes t, e.g. "median <= 2.5x pebble".
func (t Target) String() string {
	op := "<="
	if t.Metric == Throughput {
		op = ">="
	}
	return fmt.Sprintf("%s %s %gx %s", t.Metric, op, t.Bound, t.Against)
}

// Met reports whether ratio satisfies t.
func (t Target) Met(ratio float64) bool {
	if t.Metric == Throughput {
		return ratio >= t.Bound
	}
	return ratio <= t.Bound
}

// Group is a named comparison: workloads on different systems that do the
// same thing, run interleaved.
type Group struct {
	// Name identifies the group on the command line, e.g. "put-none".
	Name string
	// Title says what the group measures.
	Title string
	// Sync says whether every operation waits for an fsync; such groups get
	// Config.SyncDuration.
	Sync bool
	// Baseline is the system every ratio is computed against, "pebble".
	Baseline string
	// Targets are the design's bounds on the group's ratios.
	Targets []Target
	// Workloads returns the group's workloads for cfg, in run order.
	Workloads func(cfg Config) []Workload
}

// Lookup returns the groups named, in the given order; no names means all.
func Lookup(names []string) ([]Group, error) {
	all := Groups()
	if len(names) == 0 {
		return all, nil
	}
	var out []Group
	for _, n := range names {
		i := indexOf(all, func(g Group) bool { return g.Name == n })
		if i < 0 {
			known := make([]string, len(all))
			for j, g := range all {
				known[j] = g.Name
			}
			return nil, fmt.Errorf("harness: unknown group %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func indexOf[T any](xs []T, f func(T) bool) int {
	for i, x := range xs {
		if f(x) {
			return i
		}
	}
	return -1
}

// GroupResult is the outcome of running a group.
type GroupResult struct {
	// Name, Title and Baseline are the group's.
	Name     string `json:"name"`
	Title    string `json:"title"`
	Baseline string `json:"baseline"`
	// Timed is the duration of each rep's timed phase.
	Timed time.Duration `json:"timed_ns"`
	// Systems holds one result per workload, in run order.
	Systems []SystemResult `json:"systems"`
	// Targets holds the group's targets with their measured ratios.
	Targets []TargetResult `json:"targets"`
}

// SystemResult is one workload's statistics, each the median across reps.
type SystemResult struct {
	// System, Setting and Goroutines are the workload's.
	System     string `json:"system"`
	Setting    string `json:"setting"`
	Goroutines int    `json:"goroutines"`
	// Median, P99 and Throughput are the medians across reps of the reps'
	// statistics.
	Median     time.Duration `json:"median_ns"`
	P99        time.Duration `json:"p99_ns"`
	Throughput float64       `json:"ops_per_sec"`
	// LatencyRatio and ThroughputRatio divide Median and Throughput by the
	// baseline's.
	LatencyRatio    float64 `json:"latency_ratio"`
	ThroughputRatio float64 `json:"throughput_ratio"`
	// Note adds what only some workloads measure, e.g. the abort rate of
	// contended transactions; empty otherwise.
	Note string `json:"note,omitempty"`
	// Reps holds every rep's statistics, in run order.
	Reps []RepStats `json:"reps"`
}

// TargetResult is a target with the ratio measured for it.
type TargetResult struct {
	Target
	// Ratio is the measured ratio of medians across reps.
	Ratio float64 `json:"ratio"`
	// Met says whether Ratio satisfies the target.
	Met bool `json:"met"`
}

func newGroupResult(g Group, ws []Workload, reps [][]RepStats, timed time.Duration) GroupResult {
	res := GroupResult{Name: g.Name, Title: g.Title, Baseline: g.Baseline, Timed: timed}
	for j, w := range ws {
		res.Systems = append(res.Systems, SystemResult{
			System:     w.System,
			Setting:    w.Setting,
			Goroutines: w.Goroutines,
			Median:     median(field(reps[j], func(r RepStats) time.Duration { return r.Median })),
			P99:        median(field(reps[j], func(r RepStats) time.Duration { return r.P99 })),
			Throughput: median(field(reps[j], func(r RepStats) float64 { return r.Throughput })),
			Note:       abortNote(reps[j]),
			Reps:       reps[j],
		})
	}
	if base, ok := res.system(g.Baseline); ok {
		for i := range res.Systems {
			s := &res.Systems[i]
			s.LatencyRatio = ratio(*s, base, MedianLatency)
			s.ThroughputRatio = ratio(*s, base, Throughput)
		}
	}
	for _, t := range g.Targets {
		sys, ok1 := res.system(t.System)
		against, ok2 := res.system(t.Against)
		if !ok1 || !ok2 {
			continue
		}
		r := ratio(sys, against, t.Metric)
		res.Targets = append(res.Targets, TargetResult{Target: t, Ratio: r, Met: t.Met(r)})
	}
	return res
}

// system returns the result of the named system.
func (r GroupResult) system(name string) (SystemResult, bool) {
	i := indexOf(r.Systems, func(s SystemResult) bool { return s.System == name })
	if i < 0 {
		return SystemResult{}, false
	}
	return r.Systems[i], true
}

// ratio divides s's metric by base's, each the median across reps.
func ratio(s, base SystemResult, m Metric) float64 {
	if m == Throughput {
		return s.Throughput / base.Throughput
	}
	return float64(s.Median) / float64(base.Median)
}

// repRatios divides s's metric by base's rep by rep. Reps are interleaved,
// so rep i of both ran back to back.
func repRatios(s, base SystemResult, m Metric) []float64 {
	n := min(len(s.Reps), len(base.Reps))
	out := make([]float64, n)
	for i := range n {
		a, b := s.Reps[i], base.Reps[i]
		if m == Throughput {
			out[i] = a.Throughput / b.Throughput
		} else {
			out[i] = float64(a.Median) / float64(b.Median)
		}
	}
	return out
}
