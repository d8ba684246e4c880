package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/strata-db/strata/strata"
)

// strataAppend appends an event per op to one run of a new Strata database
// per rep, with DurabilityNone: with Database.AppendEvent, or, if inTxn,
// with Txn.AppendEvent in a Database.Transaction. Close verifies the chain.
func strataAppend(cfg Config, system string, inTxn bool) Workload {
	mode := strata.DurabilityNone
	setting := fmt.Sprintf("AppendEvent, Durability %s", mode)
	if inTxn {
		setting = fmt.Sprintf("Transaction{AppendEvent}, Durability %s", mode)
	}
	return Workload{
		System:     system,
		Setting:    setting,
		Goroutines: 1,
		Start: func(p Plan) (Instance, error) {
			in := newEventInputs(p)
			db, dir, err := openStrata(cfg, mode)
			if err != nil {
				return Instance{}, err
			}
			ctx, run := context.Background(), strata.NewRunID()
			op := func(g, i int) error {
				_, err := db.AppendEvent(ctx, run, eventType, in[g].payload(i))
				return err
			}
			if inTxn {
				op = func(g, i int) error {
					return db.Transaction(ctx, run, func(tx *strata.Txn) error {
						_, err := tx.AppendEvent(eventType, in[g].payload(i))
						return err
					})
				}
			}
			return Instance{
				Op: op,
				Close: func() error {
					return errors.Join(verifyLog(ctx, db, run, -1), closeAndRemove(db.Close, dir)())
				},
			}, nil
		},
	}
}

// verifyLog checks that run's event chain verifies and, if want >= 0,
// holds want events.
func verifyLog(ctx context.Context, db *strata.Database, run strata.RunID, want int) error {
	v, err := db.VerifyEvents(ctx, run, nil)
	if err != nil {
		return err
	}
	if err := v.Err(); err != nil {
		return err
	}
	if want >= 0 && v.Length != uint64(want) {
		return fmt.Errorf("harness: verified %d events, want %d", v.Length, want)
	}
	return nil
}

// openStrataCache opens a Strata database in dir with DurabilityNone and a
// block cache of cacheSize bytes.
func openStrataCache(cfg Config, dir string, cacheSize int64) (*strata.Database, error) {
	return strata.OpenWith(strata.Options{
		Path:         dir,
		Durability:   strata.DurabilityNone,
		MemTableSize: cfg.MemTableSize,
		CacheSize:    cacheSize,
	})
}

// strataActivity probes a Strata database's background work, for settle.
func strataActivity(db *strata.Database) func() activity {
	return func() activity {
		m := db.Metrics().Storage
		return activity{m.Flushes, m.Compactions, int64(m.DiskSpaceUsage)}
	}
}

// --- event-append-1m ---

// eventLogs is the Strata database of event-append-1m, shared by its two
// workloads and loaded once: one run holding the long log, and fresh runs
// of short logs for every rep of the short-log workload.
type eventLogs struct {
	cfg         Config
	long, short int
	dir         string
	db          *strata.Database
	run         strata.RunID // the long log
	// shortRuns holds runsPerRep short logs for each rep, rep after rep.
	shortRuns  []strata.RunID
	runsPerRep int
}

func newEventLogs(cfg Config, long, short, maxRunsPerRep int) *eventLogs {
	// As many short logs per rep as its op cap (computed as the runner
	// does) would fill, at most maxRunsPerRep.
	ops := cfg.MaxOps
	if cfg.Warmup > 0 {
		ops += max(1, int(int64(cfg.MaxOps)*int64(cfg.Warmup)/int64(cfg.Duration)))
	}
	runs := max(1, min(maxRunsPerRep, (ops+short-1)/short))
	return &eventLogs{cfg: cfg, long: long, short: short, runsPerRep: runs}
}

// prepare opens the database and loads the long log, then every rep's
// short logs. Then it closes and reopens the database, as get-1m does, and
// reads every log's length once: so every log's head is in Strata's latest
// index, which stops taking new keys once full (and the timed appends fill
// it with event keys). A head outside it costs a Pebble iterator per append,
// and the logs loaded first would be the fast ones; reading all of them at
// once puts both workloads on the same path.
func (l *eventLogs) prepare() (err error) {
	if l.dir, err = freshDir("strata"); err != nil {
		return err
	}
	if l.db, err = openStrataCache(l.cfg, l.dir, l.cfg.CacheSize); err != nil {
		return err
	}
	ctx, loaded := context.Background(), newLoadPayloads()
	l.run = strata.NewRunID()
	if err := loadEvents(ctx, l.db, l.run, l.long, loaded); err != nil {
		return err
	}
	l.shortRuns = make([]strata.RunID, l.cfg.Reps*l.runsPerRep)
	for j := range l.shortRuns {
		l.shortRuns[j] = strata.NewRunID()
		if err := loadEvents(ctx, l.db, l.shortRuns[j], l.short, loaded); err != nil {
			return err
		}
	}
	err, l.db = l.db.Close(), nil
	if err != nil {
		return err
	}
	if l.db, err = openStrataCache(l.cfg, l.dir, l.cfg.CacheSize); err != nil {
		return err
	}
	if err := checkLen(ctx, l.db, l.run, l.long); err != nil {
		return err
	}
	for _, run := range l.shortRuns {
		if err := checkLen(ctx, l.db, run, l.short); err != nil {
			return err
		}
	}
	return nil
}

// checkLen checks that run's log holds want events.
func checkLen(ctx context.Context, db *strata.Database, run strata.RunID, want int) error {
	n, err := db.EventLen(ctx, run)
	if err == nil && n != uint64(want) {
		err = fmt.Errorf("harness: log of %d events, want %d", n, want)
	}
	return err
}

// settle waits for the database's background work to stop, so that every
// rep of either workload starts from a quiescent store rather than from
// the flushes and compactions of the rep before it.
func (l *eventLogs) settle() { settle(l.cfg, "strata", strataActivity(l.db)) }

func (l *eventLogs) cleanup() error {
	var err error
	if l.db != nil {
		err = l.db.Close()
	}
	if l.dir != "" {
		err = errors.Join(err, os.RemoveAll(l.dir))
	}
	return err
}

// strataAppendLong appends an event per op to the long log.
func strataAppendLong(l *eventLogs, system string) Workload {
	return Workload{
		System:     system,
		Setting:    fmt.Sprintf("AppendEvent, Durability none, to a run loaded with %d events (it keeps every rep's appends)", l.long),
		Goroutines: 1,
		Prepare:    l.prepare,
		Start: func(p Plan) (Instance, error) {
			in, ctx := newEventInputs(p), context.Background()
			l.settle()
			return Instance{
				Op: func(g, i int) error {
					_, err := l.db.AppendEvent(ctx, l.run, eventType, in[g].payload(i))
					return err
				},
				Close: func() error { return nil },
			}, nil
		},
		Cleanup: l.cleanup,
	}
}

// strataAppendShort appends an event per op to the short logs loaded for
// the rep: op i to log i/l.short, modulo their number, so that a log holds
// between l.short and 2*l.short events while it is appended to until the
// rep wraps around them.
func strataAppendShort(l *eventLogs, system string) Workload {
	return Workload{
		System: system,
		Setting: fmt.Sprintf("AppendEvent, Durability none, to runs loaded with %d events, the next run every %d appends "+
			"(%d runs per rep, taken in turn), same database", l.short, l.short, l.runsPerRep),
		Goroutines: 1,
		Start: func(p Plan) (Instance, error) {
			in, ctx := newEventInputs(p), context.Background()
			first := p.Rep % l.cfg.Reps * l.runsPerRep
			runs := l.shortRuns[first : first+l.runsPerRep]
			l.settle()
			return Instance{
				Op: func(g, i int) error {
					_, err := l.db.AppendEvent(ctx, runs[i/l.short%len(runs)], eventType, in[g].payload(i))
					return err
				},
				Close: func() error { return nil },
			}, nil
		},
	}
}

// --- event-verify ---

// verifyStores are the stores of event-verify, loaded once: a Strata
// database holding one run of n events, and a raw Pebble copy of it.
type verifyStores struct {
	cfg    Config
	n      int
	dir    string // Strata's
	copies string // parent of Pebble's checkpoint
	db     *strata.Database
	pdb    *pebble.DB
	run    strata.RunID
	anchor events.Anchor
}

// prepare loads the run into a Strata database, closes it, takes a Pebble
// checkpoint of its directory (the same sstables and WAL, hard-linked or
// copied), reopens both and waits for both to settle. Both get the read
// group's block cache, large enough for the whole log.
func (s *verifyStores) prepare() (err error) {
	ctx := context.Background()
	if s.dir, err = freshDir("strata"); err != nil {
		return err
	}
	if s.db, err = openStrataCache(s.cfg, s.dir, s.cfg.ReadCacheSize); err != nil {
		return err
	}
	s.run = strata.NewRunID()
	if err := loadEvents(ctx, s.db, s.run, s.n, newLoadPayloads()); err != nil {
		return err
	}
	if s.anchor, err = s.db.EventAnchor(ctx, s.run); err != nil {
		return err
	}
	err, s.db = s.db.Close(), nil
	if err != nil {
		return err
	}
	if s.copies, err = freshDir("pebble"); err != nil {
		return err
	}
	ckpt := filepath.Join(s.copies, "checkpoint")
	p, err := pebble.Open(s.dir, s.pebbleOptions())
	if err != nil {
		return err
	}
	if err := errors.Join(p.Checkpoint(ckpt), p.Close()); err != nil {
		return err
	}
	if s.db, err = openStrataCache(s.cfg, s.dir, s.cfg.ReadCacheSize); err != nil {
		return err
	}
	if s.pdb, err = pebble.Open(ckpt, s.pebbleOptions()); err != nil {
		return err
	}
	settle(s.cfg, "strata", strataActivity(s.db))
	settle(s.cfg, "pebble", func() activity {
		m := s.pdb.Metrics()
		return activity{m.Flush.Count, m.Compact.Count, int64(m.DiskSpaceUsage())}
	})
	return nil
}

// pebbleOptions are raw Pebble's usual options with Strata's comparer,
// without which Pebble refuses Strata's directory.
func (s *verifyStores) pebbleOptions() *pebble.Options {
	o := pebbleOptions(s.cfg.MemTableSize, s.cfg.ReadCacheSize)
	o.Comparer = pebbleadapter.Comparer
	return o
}

func (s *verifyStores) cleanup() error {
	var err error
	if s.db != nil {
		err = s.db.Close()
	}
	if s.pdb != nil {
		err = errors.Join(err, s.pdb.Close())
	}
	for _, d := range []string{s.dir, s.copies} {
		if d != "" {
			err = errors.Join(err, os.RemoveAll(d))
		}
	}
	return err
}

// strataVerify runs Database.VerifyEvents over the whole run per op,
// against the anchor of its last event.
func strataVerify(s *verifyStores, system string) Workload {
	return Workload{
		System:     system,
		Setting:    fmt.Sprintf("VerifyEvents with an anchor, %d events per op", s.n),
		Goroutines: 1,
		Prepare:    s.prepare,
		Start: func(Plan) (Instance, error) {
			ctx := context.Background()
			return Instance{
				Op: func(int, int) error {
					v, err := s.db.VerifyEvents(ctx, s.run, &s.anchor)
					if err != nil {
						return err
					}
					if err := v.Err(); err != nil {
						return err
					}
					if v.Length != uint64(s.n) {
						return fmt.Errorf("harness: verified %d events, want %d", v.Length, s.n)
					}
					return nil
				},
				Close: func() error { return nil },
			}, nil
		},
		Cleanup: s.cleanup,
	}
}

// pebbleScanEvents iterates, per op, over the run's event keys in the raw
// Pebble checkpoint of the Strata database, reading every key and value.
func pebbleScanEvents(s *verifyStores, system string) Workload {
	return Workload{
		System:     system,
		Setting:    fmt.Sprintf("Iterator over the same %d event keys (checkpoint of Strata's store)", s.n),
		Goroutines: 1,
		Start: func(Plan) (Instance, error) {
			lo, hi := keyenc.TagBounds(keyenc.RunID(s.run), keyenc.TagEvent)
			return Instance{
				Op: func(int, int) error {
					it, err := s.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
					if err != nil {
						return err
					}
					keys, size := 0, 0
					for valid := it.First(); valid; valid = it.Next() {
						v, err := it.ValueAndErr()
						if err != nil {
							return errors.Join(err, it.Close())
						}
						keys, size = keys+1, size+len(it.Key())+len(v)
					}
					if err := it.Close(); err != nil {
						return err
					}
					if keys != s.n || size == 0 {
						return fmt.Errorf("harness: scanned %d event keys, want %d", keys, s.n)
					}
					return nil
				},
				Close: func() error { return nil },
			}, nil
		},
	}
}

// rateReference stands in for a target rate: its op sleeps items*perItem,
// so another workload's throughput ratio to it is that workload's rate of
// items over the target rate of one item per perItem.
func rateReference(system string, items int, perItem time.Duration) Workload {
	d := time.Duration(items) * perItem
	return Workload{
		System:     system,
		Setting:    fmt.Sprintf("reference: sleeps %v per op, %v per event", d, perItem),
		Goroutines: 1,
		Start: func(Plan) (Instance, error) {
			return Instance{
				Op:    func(int, int) error { time.Sleep(d); return nil },
				Close: func() error { return nil },
			}, nil
		},
	}
}
