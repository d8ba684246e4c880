package harness

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-db/strata/strata"
)

// Config sets how groups run.
type Config struct {
	// Reps is the number of reps of every workload. The default is 5.
	Reps int `json:"reps"`
	// Warmup is the untimed phase before each rep's timed phase; 0 skips it.
	// The default is 500ms.
	Warmup time.Duration `json:"warmup_ns"`
	// Duration is the timed phase of groups that do not sync. The default
	// is 2s.
	Duration time.Duration `json:"duration_ns"`
	// SyncDuration is the timed phase of groups that sync every commit. The
	// default is 3s.
	SyncDuration time.Duration `json:"sync_duration_ns"`
	// MaxOps caps the operations of one timed phase, over all goroutines;
	// the warm-up gets the same cap scaled by Warmup/Duration. The default is
	// 2,000,000.
	MaxOps int `json:"max_ops"`
	// MemTableSize is the memtable size given to Strata and raw Pebble. The
	// default is Strata's, 64 MiB.
	MemTableSize uint64 `json:"memtable_size"`
	// CacheSize is the block cache size given to Strata and raw Pebble in
	// the write groups. The default is Strata's, 64 MiB.
	CacheSize int64 `json:"cache_size"`
	// ReadKeys is the number of keys loaded for the read group. The default
	// is 1,000,000.
	ReadKeys int `json:"read_keys"`
	// ReadCacheSize is the block cache size in the read group, large enough
	// to hold the loaded store. The default is 512 MiB.
	ReadCacheSize int64 `json:"read_cache_size"`
	// TxnKeys is the number of keys loaded, untimed, into every rep's fresh
	// store for the transaction groups that read existing keys. The default
	// is 100,000.
	TxnKeys int `json:"txn_keys"`
	// Settle is how long a loaded store must show no flush or compaction
	// activity before the read group times it. The default is 1s.
	Settle time.Duration `json:"settle_ns"`
	// Progress, if not nil, receives a line per rep.
	Progress io.Writer `json:"-"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Reps:          5,
		Warmup:        500 * time.Millisecond,
		Duration:      2 * time.Second,
		SyncDuration:  3 * time.Second,
		MaxOps:        2_000_000,
		MemTableSize:  strata.DefaultMemTableSize,
		CacheSize:     strata.DefaultCacheSize,
		ReadKeys:      1_000_000,
		ReadCacheSize: 512 << 20,
		TxnKeys:       100_000,
		Settle:        time.Second,
	}
}

// validate rejects a config with a field out of range. Zero sizes are
// refused rather than defaulted, since Strata and raw Pebble would default
// them differently.
func (c Config) validate() error {
	if c.Reps < 1 || c.Warmup < 0 || c.Duration <= 0 || c.SyncDuration <= 0 || c.MaxOps < 1 ||
		c.MemTableSize == 0 || c.CacheSize <= 0 || c.ReadKeys < 1 || c.ReadCacheSize <= 0 || c.TxnKeys < 1 || c.Settle <= 0 {
		return fmt.Errorf("harness: invalid config %+v", c)
	}
	return nil
}

func (c Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// Run runs every workload of g for cfg.Reps reps, interleaved: rep 1 of
// each workload in turn, then rep 2, and so on.
func Run(g Group, cfg Config) (res GroupResult, err error) {
	if err := cfg.validate(); err != nil {
		return GroupResult{}, err
	}
	timed := cfg.Duration
	if g.Sync {
		timed = cfg.SyncDuration
	}
	ws := g.Workloads(cfg)
	defer func() {
		for _, w := range ws {
			if w.Cleanup != nil {
				err = errors.Join(err, w.Cleanup())
			}
		}
	}()
	for _, w := range ws {
		if w.Prepare == nil {
			continue
		}
		start := time.Now()
		if err := w.Prepare(); err != nil {
			return GroupResult{}, fmt.Errorf("%s: prepare %s: %w", g.Name, w.System, err)
		}
		cfg.logf("%s: prepared %s in %v", g.Name, w.System, time.Since(start).Round(time.Millisecond))
	}
	reps := make([][]RepStats, len(ws))
	for rep := range cfg.Reps {
		for j, w := range ws {
			st, err := runRep(w, rep, timed, cfg)
			if err != nil {
				return GroupResult{}, fmt.Errorf("%s: %s rep %d: %w", g.Name, w.System, rep+1, err)
			}
			cfg.logf("%s: rep %d/%d %-6s median %s p99 %s %s (%d ops)", g.Name, rep+1, cfg.Reps,
				w.System, fmtDur(st.Median), fmtDur(st.P99), fmtRate(st.Throughput), st.Ops)
			reps[j] = append(reps[j], st)
		}
	}
	return newGroupResult(g, ws, reps, timed), nil
}

// runRep starts one rep of w, warms it up, times it and closes it.
func runRep(w Workload, rep int, timed time.Duration, cfg Config) (RepStats, error) {
	timedCap := max(1, cfg.MaxOps/w.Goroutines)
	warmCap := 0
	if cfg.Warmup > 0 {
		warmCap = max(1, int(int64(timedCap)*int64(cfg.Warmup)/int64(timed)))
	}
	inst, err := w.Start(Plan{Rep: rep, Goroutines: w.Goroutines, OpsPerGoroutine: warmCap + timedCap})
	if err != nil {
		return RepStats{}, err
	}
	// Collect the previous rep's garbage and the inputs' now, not while timing.
	runtime.GC()
	st, err := measure(inst, w.Goroutines, warmCap, timedCap, cfg.Warmup, timed)
	if cerr := inst.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close: %w", cerr))
	}
	st.CPUPressure = cpuPressure()
	return st, err
}

// measure runs the warm-up phase, then the timed phase, and reduces the
// timed phase's latencies and, if inst counts them, its transaction
// attempts.
func measure(inst Instance, goroutines, warmCap, timedCap int, warmup, timed time.Duration) (RepStats, error) {
	next := make([]int, goroutines)
	end := make([]int, goroutines)
	if warmup > 0 {
		for g := range end {
			end[g] = warmCap
		}
		if _, err := phase(inst.Op, next, end, warmup, nil); err != nil {
			return RepStats{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	lats := make([][]time.Duration, goroutines)
	for g := range lats {
		lats[g] = make([]time.Duration, 0, timedCap)
		end[g] = next[g] + timedCap
	}
	var before TxnCounts
	if inst.Counts != nil {
		before = inst.Counts()
	}
	wall, err := phase(inst.Op, next, end, timed, lats)
	if err != nil {
		return RepStats{}, err
	}
	st := newRepStats(lats, wall)
	if inst.Counts != nil {
		after := inst.Counts()
		st.Attempts, st.Aborts = after.Attempts-before.Attempts, after.Aborts-before.Aborts
	}
	return st, nil
}

// phase runs goroutine g's operations next[g], next[g]+1, ... until its
// operation ends at or after d from the phase's start, it reaches end[g], or
// any operation fails. It leaves in next[g] the first operation not run and,
// when lats is not nil, appends each operation's latency to lats[g]. It
// returns the phase's wall time.
func phase(op func(g, i int) error, next, end []int, d time.Duration, lats [][]time.Duration) (time.Duration, error) {
	var (
		wg    sync.WaitGroup
		stop  atomic.Bool
		begin time.Time
		gate  = make(chan struct{})
		errs  = make([]error, len(next))
	)
	for g := range next {
		wg.Go(func() {
			<-gate
			deadline := begin.Add(d)
			i := next[g]
			defer func() { next[g] = i }()
			for i < end[g] && !stop.Load() {
				t0 := time.Now()
				err := op(g, i)
				t1 := time.Now()
				if err != nil {
					errs[g] = fmt.Errorf("goroutine %d, op %d: %w", g, i, err)
					stop.Store(true)
					return
				}
				i++
				if lats != nil {
					lats[g] = append(lats[g], t1.Sub(t0))
				}
				if !t1.Before(deadline) {
					return
				}
			}
		})
	}
	begin = time.Now()
	close(gate)
	wg.Wait()
	return time.Since(begin), errors.Join(errs...)
}
