package harness

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
	"github.com/strata-db/strata/strata"
)

// pebbleOptions configures raw Pebble as Strata's pebbleadapter does: newest
// format, 10-bit bloom filters on every level, the same memtable and cache
// sizes. Strata's comparer and event listener are left out.
func pebbleOptions(memTableSize uint64, cacheSize int64) *pebble.Options {
	o := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       memTableSize,
		CacheSize:          cacheSize,
		Logger:             quietLogger{},
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}

// quietLogger drops Pebble's informational lines and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Errorf(format string, args ...any) { pebble.DefaultLogger.Errorf(format, args...) }

func (quietLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

// syncName names a write option's sync setting.
func syncName(wo *pebble.WriteOptions) string {
	if wo.Sync {
		return "Sync"
	}
	return "NoSync"
}

// pebblePut writes a fresh key per op with DB.Set into a new Pebble store
// per rep.
func pebblePut(cfg Config, wo *pebble.WriteOptions, goroutines int) Workload {
	return Workload{
		System:     "pebble",
		Setting:    "Set, " + syncName(wo),
		Goroutines: goroutines,
		Start: func(p Plan) (Instance, error) {
			in := newWriteInputs(p)
			db, dir, err := openPebble(cfg)
			if err != nil {
				return Instance{}, err
			}
			return Instance{
				Op: func(g, i int) error {
					k, v := in.kv(g, i)
					return db.Set(k, v, wo)
				},
				Close: closeAndRemove(db.Close, dir),
			}, nil
		},
	}
}

// pebbleShapedPut is pebblePut with Strata's record shape: each key encoded
// as a Strata KV key of one run at a new version (44 bytes for a 16-byte
// key), each value behind Strata's 9-byte record header, ordered by Strata's
// comparer. It measures what Pebble itself costs for the records a Strata
// commit writes, without anything Strata does around them.
func pebbleShapedPut(cfg Config, wo *pebble.WriteOptions, goroutines int) Workload {
	return shapedWorkload(cfg, "pebble, strata records", "Set, "+syncName(wo)+", Strata's key, header and comparer", goroutines,
		func(db *pebble.DB, record func(g, i int, version uint64) ([]byte, []byte)) func(g, i int) error {
			var version atomic.Uint64
			return func(g, i int) error {
				k, v := record(g, i, version.Add(1))
				return db.Set(k, v, wo)
			}
		})
}

// shapedWorkload is a workload writing Strata's records to raw Pebble
// (openShapedPebble): op returns the operation, given the store and record,
// which encodes goroutine g's i-th write at a version.
func shapedWorkload(cfg Config, system, setting string, goroutines int,
	op func(db *pebble.DB, record func(g, i int, version uint64) ([]byte, []byte)) func(g, i int) error) Workload {
	return stoppedShapedWorkload(cfg, system, setting, goroutines,
		func(db *pebble.DB, record func(g, i int, version uint64) ([]byte, []byte)) (func(g, i int) error, func() error) {
			return op(db, record), func() error { return nil }
		})
}

// stoppedShapedWorkload is shapedWorkload whose op comes with work of its
// own in the background: stop ends it, before the store closes.
func stoppedShapedWorkload(cfg Config, system, setting string, goroutines int,
	op func(db *pebble.DB, record func(g, i int, version uint64) ([]byte, []byte)) (func(g, i int) error, func() error)) Workload {
	return Workload{
		System:     system,
		Setting:    setting,
		Goroutines: goroutines,
		Start: func(p Plan) (Instance, error) {
			in := newWriteInputs(p)
			db, dir, err := openShapedPebble(cfg)
			if err != nil {
				return Instance{}, err
			}
			recs := newStrataRecords(goroutines)
			record := func(g, i int, version uint64) ([]byte, []byte) { return recs.record(g, in, i, version) }
			run, stop := op(db, record)
			return Instance{Op: run, Close: func() error { return errors.Join(stop(), closeAndRemove(db.Close, dir)()) }}, nil
		},
	}
}

// pebbleBatchedPut is pebbleShapedPut with NoSync writes and the syncs of
// Strata's Batched mode at its defaults: a background goroutine issues a
// synced, empty LogData (a WAL fsync covering every write before it) once
// DefaultMaxPendingCommits writes are pending, or DefaultSyncInterval after
// the last sync, as Strata's syncer does. It measures what Pebble costs for
// the records and the fsyncs of Batched commits, without Strata.
func pebbleBatchedPut(cfg Config) Workload {
	setting := fmt.Sprintf("Set, NoSync, Strata's key, header and comparer; a WAL fsync per %d writes or %v",
		strata.DefaultMaxPendingCommits, strata.DefaultSyncInterval)
	return stoppedShapedWorkload(cfg, pebbleBatchedSystem, setting, 1,
		func(db *pebble.DB, record func(g, i int, version uint64) ([]byte, []byte)) (func(g, i int) error, func() error) {
			var version atomic.Uint64
			syncer := startBatchedSyncer(func() error { return db.LogData(nil, pebble.Sync) },
				strata.DefaultMaxPendingCommits, strata.DefaultSyncInterval)
			op := func(g, i int) error {
				k, v := record(g, i, version.Add(1))
				if err := db.Set(k, v, pebble.NoSync); err != nil {
					return err
				}
				syncer.wrote()
				return nil
			}
			return op, syncer.close
		})
}

// batchedSyncer calls sync from a goroutine of its own once maxPending
// writes are pending, or interval after its last call, as Strata's Batched
// syncer does.
type batchedSyncer struct {
	maxPending int64
	pending    atomic.Int64
	kick       chan struct{}
	stop       chan struct{}
	done       chan error
}

func startBatchedSyncer(sync func() error, maxPending int64, interval time.Duration) *batchedSyncer {
	s := &batchedSyncer{maxPending: maxPending, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		t := time.NewTimer(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.done <- nil
				return
			case <-t.C:
			case <-s.kick:
			}
			s.pending.Store(0)
			if err := sync(); err != nil {
				s.done <- err
				return
			}
			t.Reset(interval) // the next sync at the latest interval after this one
		}
	}()
	return s
}

// wrote counts a write, and wakes the syncer once maxPending are pending.
func (s *batchedSyncer) wrote() {
	if s.pending.Add(1) >= s.maxPending {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// close stops the syncer and returns the error of its last sync, if any.
func (s *batchedSyncer) close() error {
	close(s.stop)
	return <-s.done
}

// pebbleOrderedPut is pebbleShapedPut with the versions in WAL order, as
// Strata's commits have them: a mutex covers each write's version and its
// batch's entry into Pebble (ApplyNoSyncWait), and the fsync wait comes
// after it. Against pebbleShapedPut it measures what that order costs
// Pebble (whose concurrent writers otherwise fill the memtable in parallel).
func pebbleOrderedPut(cfg Config, wo *pebble.WriteOptions, goroutines int) Workload {
	return shapedWorkload(cfg, "pebble, strata records in version order", "Batch, "+syncName(wo)+", applied under a mutex, fsync waited outside it", goroutines,
		func(db *pebble.DB, record func(g, i int, version uint64) ([]byte, []byte)) func(g, i int) error {
			var mu sync.Mutex
			var version uint64
			return func(g, i int) error {
				b := db.NewBatch()
				mu.Lock()
				version++
				k, v := record(g, i, version)
				err := b.Set(k, v, nil)
				if err == nil {
					err = db.ApplyNoSyncWait(b, wo)
				}
				mu.Unlock()
				if err == nil && wo.Sync {
					err = b.SyncWait()
				}
				return errors.Join(err, b.Close())
			}
		})
}

// openShapedPebble opens raw Pebble for Strata's records: the write groups'
// settings with Strata's comparer.
func openShapedPebble(cfg Config) (*pebble.DB, string, error) {
	opts := pebbleOptions(cfg.MemTableSize, cfg.CacheSize)
	opts.Comparer = pebbleadapter.Comparer
	return openPebbleWith(opts)
}

// strataRecords encodes write inputs as the records a Strata commit of one
// run writes, into a key and a value buffer per goroutine.
type strataRecords struct {
	run          keyenc.RunID
	kbufs, vbufs [][]byte
}

func newStrataRecords(goroutines int) *strataRecords {
	return &strataRecords{
		run:   keyenc.RunID(strata.NewRunID()),
		kbufs: make([][]byte, goroutines),
		vbufs: make([][]byte, goroutines),
	}
}

// record returns goroutine g's op i as a KV key at version and a Bytes
// value behind its header, valid until g's next call.
func (r *strataRecords) record(g int, in *writeInputs, i int, version uint64) (key, val []byte) {
	k, v := in.kv(g, i)
	r.kbufs[g] = keyenc.AppendVersioned(r.kbufs[g][:0], r.run, keyenc.TagKV, k, version)
	r.vbufs[g] = append(keyenc.AppendHeader(r.vbufs[g][:0], keyenc.KindBytes, time.Now().UnixNano()), v...)
	return r.kbufs[g], r.vbufs[g]
}

// openPebble opens a Pebble store in a fresh directory, with the write
// groups' memtable and cache sizes.
func openPebble(cfg Config) (*pebble.DB, string, error) {
	return openPebbleWith(pebbleOptions(cfg.MemTableSize, cfg.CacheSize))
}

// openPebbleWith opens a Pebble store with opts in a fresh directory.
func openPebbleWith(opts *pebble.Options) (*pebble.DB, string, error) {
	dir, err := freshDir("pebble")
	if err != nil {
		return nil, "", err
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, "", errors.Join(err, os.RemoveAll(dir))
	}
	return db, dir, nil
}

// pebbleGet reads random keys of a Pebble store loaded once with keys.
func pebbleGet(cfg Config, keys *keySet) Workload {
	var (
		dir string
		db  *pebble.DB
	)
	open := func() (err error) {
		db, err = pebble.Open(dir, pebbleOptions(cfg.MemTableSize, cfg.ReadCacheSize))
		return err
	}
	get := func(i int) error { return pebbleCheckGet(db, keys.key(i)) }
	probe := func() activity {
		m := db.Metrics()
		return activity{m.Flush.Count, m.Compact.Count, int64(m.DiskSpaceUsage())}
	}
	return Workload{
		System:     "pebble",
		Setting:    fmt.Sprintf("Get, %d keys", keys.len()),
		Goroutines: 1,
		Prepare: func() (err error) {
			if dir, err = freshDir("pebble"); err != nil {
				return err
			}
			if err := open(); err != nil {
				return err
			}
			if err := pebbleLoad(db, keys); err != nil {
				return err
			}
			// Close and reopen, as the Strata side must (its API cannot
			// flush or compact), so both stores are treated alike.
			if err := db.Close(); err != nil {
				return err
			}
			db = nil
			if err := open(); err != nil {
				return err
			}
			return settleAndWarm(cfg, "pebble", keys.len(), get, probe)
		},
		Start: func(p Plan) (Instance, error) {
			idx := keys.readIndexes(p)
			return Instance{
				Op:    func(g, i int) error { return get(int(idx[g][i])) },
				Close: func() error { return nil },
			}, nil
		},
		Cleanup: func() error {
			var err error
			if db != nil {
				err = db.Close()
			}
			if dir != "" {
				err = errors.Join(err, os.RemoveAll(dir))
			}
			return err
		},
	}
}

// pebbleLoad writes every key of keys in NoSync batches of 1000.
func pebbleLoad(db *pebble.DB, keys *keySet) error {
	const batchSize = 1000
	for lo := 0; lo < keys.len(); lo += batchSize {
		b := db.NewBatch()
		for i := lo; i < min(lo+batchSize, keys.len()); i++ {
			if err := b.Set(keys.key(i), keys.vals.value(i), nil); err != nil {
				return errors.Join(err, b.Close())
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return errors.Join(err, b.Close())
		}
		if err := b.Close(); err != nil {
			return err
		}
	}
	return nil
}
