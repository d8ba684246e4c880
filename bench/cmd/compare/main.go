// Command compare runs Strata, raw Pebble and Badger side by side and prints
// a markdown table per comparison group, with Strata's ratios to raw Pebble
// next to the design's targets.
//
//	cd bench && go run ./cmd/compare -reps 5 [-groups put-none,get-1m,txn-rmw] [-json out.json] [-v]
//
// A missed target does not change the exit status: on a shared machine a
// single run is evidence, not a verdict.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/strata-db/strata/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := harness.DefaultConfig()
	var (
		groups   = flag.String("groups", "", "comma-separated groups to run (default all): "+groupNames())
		jsonPath = flag.String("json", "", "also write the results as JSON to this file")
		verbose  = flag.Bool("v", false, "print a progress line per rep to stderr")
		memMiB   = flag.Uint64("memtable-mib", cfg.MemTableSize>>20, "memtable size of Strata and Pebble, MiB")
		cacheMiB = flag.Int64("cache-mib", cfg.CacheSize>>20, "block cache of Strata and Pebble in the put groups, MiB")
		readMiB  = flag.Int64("read-cache-mib", cfg.ReadCacheSize>>20, "block cache in the get group, MiB")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the whole run (every system) to this file")
	)
	flag.IntVar(&cfg.Reps, "reps", cfg.Reps, "reps per workload, interleaved across systems")
	flag.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "untimed warm-up before each rep")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "timed phase of the groups that do not sync")
	flag.DurationVar(&cfg.SyncDuration, "sync-duration", cfg.SyncDuration, "timed phase of the groups that sync")
	flag.IntVar(&cfg.MaxOps, "max-ops", cfg.MaxOps, "cap on the ops of one timed phase")
	flag.IntVar(&cfg.ReadKeys, "read-keys", cfg.ReadKeys, "keys loaded for the get group")
	flag.IntVar(&cfg.TxnKeys, "txn-keys", cfg.TxnKeys, "keys loaded per rep for the transaction groups that read (txn-rmw, txn-10r1w)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	cfg.MemTableSize, cfg.CacheSize, cfg.ReadCacheSize = *memMiB<<20, *cacheMiB<<20, *readMiB<<20
	if *verbose {
		cfg.Progress = os.Stderr
	}
	var names []string
	if *groups != "" {
		names = strings.Split(*groups, ",")
	}
	selected, err := harness.Lookup(names)
	if err != nil {
		return err
	}

	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	machine := harness.ReadMachine(strings.Join(append([]string{"compare"}, os.Args[1:]...), " "))
	if err := harness.WriteHeader(os.Stdout, machine, cfg); err != nil {
		return err
	}
	report := harness.Report{Machine: machine, Config: cfg}
	for _, g := range selected {
		res, err := harness.Run(g, cfg)
		if err != nil {
			return err
		}
		if err := harness.WriteGroup(os.Stdout, res); err != nil {
			return err
		}
		report.Groups = append(report.Groups, res)
	}
	if err := harness.WriteSummary(os.Stdout, report.Groups); err != nil {
		return err
	}
	if *jsonPath == "" {
		return nil
	}
	f, err := os.Create(*jsonPath)
	if err != nil {
		return err
	}
	if err := report.WriteJSON(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func groupNames() string {
	var names []string
	for _, g := range harness.Groups() {
		names = append(names, g.Name)
	}
	return strings.Join(names, ", ")
}
