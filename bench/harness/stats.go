package harness

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RepStats are the statistics of one rep of one workload.
type RepStats struct {
	// Ops is the number of timed operations, over all goroutines.
	Ops int `json:"ops"`
	// Wall is the wall time of the timed phase.
	Wall time.Duration `json:"wall_ns"`
	// Median and P99 are percentiles of the pooled per-op latencies.
	Median time.Duration `json:"median_ns"`
	P99    time.Duration `json:"p99_ns"`
	// Throughput is Ops divided by Wall, in operations per second.
	Throughput float64 `json:"ops_per_sec"`
	// Attempts and Aborts are the transaction attempts and aborts of the
	// timed phase, for workloads that count them (Instance.Counts).
	Attempts int64 `json:"attempts,omitempty"`
	Aborts   int64 `json:"aborts,omitempty"`
	// CPUPressure is Linux's CPU pressure after the rep ("some avg10" of
	// /proc/pressure/cpu, in percent), or -1 where it cannot be read.
	CPUPressure float64 `json:"cpu_pressure_avg10"`
}

// newRepStats sorts the pooled latencies of a timed phase and reduces them.
func newRepStats(lats [][]time.Duration, wall time.Duration) RepStats {
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	return RepStats{
		Ops:        len(all),
		Wall:       wall,
		Median:     quantile(all, 0.5),
		P99:        quantile(all, 0.99),
		Throughput: float64(len(all)) / wall.Seconds(),
	}
}

// quantile returns the nearest-rank q-quantile of sorted, 0 if it is empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 if xs is empty. xs is not modified.
func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// field extracts one statistic from every rep.
func field[T any](reps []RepStats, f func(RepStats) T) []T {
	out := make([]T, len(reps))
	for i, r := range reps {
		out[i] = f(r)
	}
	return out
}

// cpuPressure reads "some avg10" from /proc/pressure/cpu, or returns -1.
func cpuPressure() float64 {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			if p, err := strconv.ParseFloat(v, 64); err == nil {
				return p
			}
		}
	}
	return -1
}

// abortNote describes the aborted share of the transaction attempts of the
// reps that counted them: the median across reps, with [min–max]. It is
// empty when no rep counted.
func abortNote(reps []RepStats) string {
	var rates []float64
	var attempts int64
	for _, r := range reps {
		if r.Attempts > 0 {
			rates = append(rates, float64(r.Aborts)/float64(r.Attempts))
			attempts += r.Attempts
		}
	}
	if len(rates) == 0 {
		return ""
	}
	pct := func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
	return fmt.Sprintf("abort rate %s (aborted/started attempts, %d attempts timed)",
		fmtRange(median(rates), rates, pct), attempts)
}
