package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is a whole run, as cmd/compare writes it in JSON.
type Report struct {
	// Machine says where and how the run happened.
	Machine Machine `json:"machine"`
	// Config is the configuration every group ran with.
	Config Config `json:"config"`
	// Groups holds the groups' results, in run order.
	Groups []GroupResult `json:"groups"`
}

// WriteJSON writes r as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteHeader writes the markdown preamble of a run: machine, settings and
// how to read the tables.
func WriteHeader(w io.Writer, m Machine, cfg Config) error {
	pressure := "unreadable"
	if m.CPUPressure >= 0 {
		pressure = fmt.Sprintf("%.1f %%", m.CPUPressure)
	}
	_, err := fmt.Fprintf(w, `# Strata vs raw Pebble vs Badger

| | |
|---|---|
| date | %s |
| command | %s |
| Go | %s %s/%s, GOMAXPROCS=%d, NumCPU=%d |
| CPU | %s |
| stores in | %s |
| CPU pressure at start (some avg10) | %s |
| settings | %s |

Every cell is the median across reps of a per-rep statistic, with [min–max across reps].
Per rep: median and p99 of the pooled per-op latencies (time.Now pairs), throughput = timed ops / wall time.
Ratios divide by the baseline's median across reps, with [min–max of the per-rep ratios] (reps run back to back).
Keys are 16 random bytes, values 100 random bytes, a fresh key per write unless a group says otherwise.

`, m.Date.Format(time.RFC3339), m.Command, m.GoVersion, m.OS, m.Arch, m.GOMAXPROCS, m.NumCPU,
		orDash(m.CPU), m.TempDir, pressure, describeConfig(cfg))
	return err
}

// describeConfig summarises cfg in one line.
func describeConfig(cfg Config) string {
	return fmt.Sprintf("%d reps, interleaved; warm-up %v; timed phase %v (no sync) / %v (sync), "+
		"at most %d ops; memtable %d MiB, block cache %d MiB for Strata and Pebble; "+
		"get group: %d keys, block cache %d MiB; transaction groups reading existing keys: %d keys loaded per rep",
		cfg.Reps, cfg.Warmup, cfg.Duration, cfg.SyncDuration, cfg.MaxOps,
		cfg.MemTableSize>>20, cfg.CacheSize>>20, cfg.ReadKeys, cfg.ReadCacheSize>>20, cfg.TxnKeys)
}

// WriteGroup writes one group's markdown table, with each target next to
// the row it constrains.
func WriteGroup(w io.Writer, r GroupResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s: %s\n\nTimed phase %v per rep.\n\n", r.Name, r.Title, r.Timed)
	hasNote := slices.ContainsFunc(r.Systems, func(s SystemResult) bool { return s.Note != "" })
	noteHead, noteRule := "", ""
	if hasNote {
		noteHead, noteRule = " note |", "---|"
	}
	fmt.Fprintf(&b, "| system | setting | goroutines | median | p99 | throughput | median vs %[1]s | throughput vs %[1]s | target |%[2]s\n", r.Baseline, noteHead)
	b.WriteString("|---|---|---|---|---|---|---|---|---|" + noteRule + "\n")
	base, hasBase := r.system(r.Baseline)
	var pressure []float64
	for _, s := range r.Systems {
		latRatio, thrRatio := "–", "–"
		switch {
		case s.System == r.Baseline:
			latRatio, thrRatio = "baseline", "baseline"
		case hasBase:
			latRatio = fmtRatio(s.LatencyRatio, repRatios(s, base, MedianLatency))
			thrRatio = fmtRatio(s.ThroughputRatio, repRatios(s, base, Throughput))
		}
		var targets []string
		for _, t := range r.Targets {
			if t.System == s.System {
				targets = append(targets, fmt.Sprintf("%v: %.2fx %s", t.Target, t.Ratio, passMiss(t.Met)))
			}
		}
		note := ""
		if hasNote {
			note = " " + orDash(s.Note) + " |"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s |%s\n",
			s.System, s.Setting, s.Goroutines,
			fmtRange(s.Median, field(s.Reps, func(r RepStats) time.Duration { return r.Median }), fmtDur),
			fmtRange(s.P99, field(s.Reps, func(r RepStats) time.Duration { return r.P99 }), fmtDur),
			fmtRange(s.Throughput, field(s.Reps, func(r RepStats) float64 { return r.Throughput }), fmtRate),
			latRatio, thrRatio, orDash(strings.Join(targets, "; ")), note)
		for _, rep := range s.Reps {
			if rep.CPUPressure >= 0 {
				pressure = append(pressure, rep.CPUPressure)
			}
		}
	}
	if len(pressure) > 0 {
		fmt.Fprintf(&b, "\nCPU pressure (some avg10) after each rep: %.1f–%.1f %%.\n",
			slices.Min(pressure), slices.Max(pressure))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSummary writes every target of every group with its verdict.
func WriteSummary(w io.Writer, groups []GroupResult) error {
	var b strings.Builder
	b.WriteString("## Targets\n\n| group | target | measured | result |\n|---|---|---|---|\n")
	met, missed := 0, 0
	for _, g := range groups {
		for _, t := range g.Targets {
			fmt.Fprintf(&b, "| %s | %s %v | %.2fx | %s |\n", g.Name, t.System, t.Target, t.Ratio, passMiss(t.Met))
			if t.Met {
				met++
			} else {
				missed++
			}
		}
	}
	fmt.Fprintf(&b, "\n%d PASS, %d MISS.\n", met, missed)
	_, err := io.WriteString(w, b.String())
	return err
}

func passMiss(met bool) string {
	if met {
		return "PASS"
	}
	return "MISS"
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// fmtRange formats a median across reps and the range of the reps' values.
func fmtRange[T time.Duration | float64](mid T, reps []T, f func(T) string) string {
	if len(reps) < 2 {
		return f(mid)
	}
	return fmt.Sprintf("%s [%s–%s]", f(mid), f(slices.Min(reps)), f(slices.Max(reps)))
}

// fmtRatio formats a ratio of medians and the range of the per-rep ratios.
func fmtRatio(r float64, reps []float64) string {
	if len(reps) < 2 {
		return fmt.Sprintf("%.2fx", r)
	}
	return fmt.Sprintf("%.2fx [%.2f–%.2f]", r, slices.Min(reps), slices.Max(reps))
}

// fmtDur formats d with three significant digits.
func fmtDur(d time.Duration) string {
	v, unit := float64(d), "ns"
	switch {
	case d >= time.Second:
		v, unit = d.Seconds(), "s"
	case d >= time.Millisecond:
		v, unit = v/1e6, "ms"
	case d >= time.Microsecond:
		v, unit = v/1e3, "µs"
	}
	return sig3(v) + unit
}

// fmtRate formats operations per second with three significant digits.
func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return sig3(r/1e6) + "M/s"
	case r >= 1e3:
		return sig3(r/1e3) + "k/s"
	}
	return sig3(r) + "/s"
}

// sig3 formats v (0 <= v < 1000) with three significant digits.
func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
