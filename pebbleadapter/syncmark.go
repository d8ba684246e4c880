package pebbleadapter

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/internal/syncmark"
	"github.com/strata-db/strata/keyenc"
)

// Sync marks detect synced writes that recovery lost without an error.
//
// Pebble replays its WAL up to the first record it cannot read and takes
// what follows for the torn tail of a crash. Damage to the WAL (bit rot, a
// bad sector) is told from a torn tail only where Pebble recorded a synced
// offset past it, which in Pebble v2.1.7 lags far behind the data when
// commits are not synced one by one; and damage near the end of the
// MANIFEST is taken for its end. Either way the store opens at an older
// state and writes that were synced are gone, silently.
//
// So every sync barrier also writes a counter, the sync mark, under the
// system key keyenc.SysSyncMark, in the synced batch itself. Once such a
// barrier is synced its mark is durable, and the adapter records it in a
// small file beside Pebble's (SyncMarkFileName), itself fsynced: the first
// barrier of a session at once, later ones at most once per
// syncMarkInterval, and the last barrier Close writes always. The file
// never holds a mark that is not durable in the store, so after any crash
// the store's mark is at least the file's. Open compares them: a store
// whose mark is below the file's lost synced writes, and is refused with
// ErrCorruption. Close also flushes the memtable after its barrier, so
// that the last mark lives in a table only the MANIFEST names: a MANIFEST
// that loses its last edits then loses that mark too.
//
// What it cannot see: writes synced after the last mark the file records
// (none after a clean Close), and loss that spares every batch carrying a
// newer mark (a MANIFEST rolled back, after a crash, to edits older than
// the newest WAL). A missing file disables the check and is not an error
// (stores from before it, and Pebble checkpoints, have none).

// SyncMarkFileName is the name of the sync mark file in a store's
// directory.
const SyncMarkFileName = syncmark.FileName

var syncMarkKey = keyenc.SystemKey(keyenc.SysSyncMark)

// syncMarkInterval is the least time between two writes of the sync mark
// file, each an extra fsync, outside Close. (A variable for tests only.)
var syncMarkInterval = time.Second

// readSyncMarkFile returns the mark recorded in dir's sync mark file, 0 if
// there is no file, and the slot to write next.
func readSyncMarkFile(fs vfs.FS, dir string) (uint64, int, error) {
	f, err := fs.Open(fs.PathJoin(dir, SyncMarkFileName))
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("strata: %s: %w", SyncMarkFileName, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, syncmark.MaxFileLen+1))
	if err != nil {
		return 0, 0, fmt.Errorf("strata: %s: %w", SyncMarkFileName, err)
	}
	return syncmark.Decode(b)
}

// checkSyncMark compares the store's sync mark with the file's, on Open,
// and sets up the marks of this session.
func (d *DB) checkSyncMark(fs vfs.FS, dir string) error {
	var stored uint64
	v, err := d.Get(syncMarkKey)
	switch {
	case errors.Is(err, serr.ErrNotFound):
	case err != nil:
		return err
	default:
		if stored, err = keyenc.DecodeUint64(v); err != nil {
			return fmt.Errorf("%w (the sync mark record)", err)
		}
	}
	recorded, next, err := readSyncMarkFile(fs, dir)
	if err != nil {
		return err
	}
	if stored < recorded {
		return fmt.Errorf("%w: %s recovered to sync mark %d, but mark %d was synced before: "+
			"recovery lost synced writes (damage to the WAL or the MANIFEST, or files restored from an older copy)",
			serr.ErrCorruption, dir, stored, recorded)
	}
	d.marks = syncMarks{fs: fs, dir: dir, stored: stored, recorded: recorded, next: next}
	return nil
}

// syncMarks is the sync mark state of an open store, guarded by
// DB.marksMu, which also orders barriers so that marks reach the WAL in
// increasing order.
type syncMarks struct {
	fs       vfs.FS
	dir      string
	stored   uint64 // the last mark applied to the store
	recorded uint64 // the mark the file holds
	next     int    // the slot to write next
	written  time.Time
	file     vfs.File
	disabled bool        // a write of the file failed: stop writing it
	closed   bool        // Close has begun: write nothing more but its own
	later    *time.Timer // a record deferred by syncMarkInterval, if pending
}

// recordSyncMark writes the last synced mark to the file if it is newer than
// the file's and force is set or syncMarkInterval has passed since the last
// write; otherwise it defers the write to when the interval has passed. A
// failure is logged and stops further writes: the file only ever lags the
// store, and a file that lags only weakens the check.
func (d *DB) recordSyncMark(force bool) {
	m := &d.marks
	if m.disabled || m.stored <= m.recorded {
		return
	}
	if wait := syncMarkInterval - time.Since(m.written); !force && wait > 0 {
		// Record it once the interval has passed, even if no barrier
		// comes then: the last barrier before a quiet spell must not wait
		// for Close.
		if m.later == nil {
			m.later = time.AfterFunc(wait, d.recordDeferredSyncMark)
		}
		return
	}
	if err := m.write(); err != nil {
		m.disabled = true
		m.closeFile()
		d.log.Error().Err(err).Msg("strata: cannot record the sync mark; the check for lost synced writes stays at the last mark recorded")
		return
	}
	m.recorded, m.next, m.written = m.stored, 1-m.next, time.Now()
}

// recordDeferredSyncMark is the deferred record recordSyncMark schedules.
func (d *DB) recordDeferredSyncMark() {
	d.marksMu.Lock()
	defer d.marksMu.Unlock()
	d.marks.later = nil
	if !d.marks.closed && d.Failed() == nil {
		d.recordSyncMark(false)
	}
}

func (m *syncMarks) closeFile() {
	if m.file != nil {
		_ = m.file.Close()
		m.file = nil
	}
}

func (m *syncMarks) write() error {
	if m.file == nil {
		path := m.fs.PathJoin(m.dir, SyncMarkFileName)
		f, err := m.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		m.file = f
		if m.recorded == 0 {
			// Possibly a new file: make its name durable too.
			if err := f.Sync(); err != nil {
				return err
			}
			dir, err := m.fs.OpenDir(m.dir)
			if err != nil {
				return err
			}
			err = dir.Sync()
			if cerr := dir.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	if _, err := m.file.WriteAt(syncmark.EncodeSlot(m.stored), syncmark.SlotOffset(m.next)); err != nil {
		return err
	}
	return m.file.Sync()
}

// closeSyncMark ends the session's sync marks on Close: a last barrier,
// so that the store's last WAL record is a mark, recorded in the file. Any
// damage to the WAL before it, or to it, then fails the next Open, even in
// the WAL's last block, where Pebble cannot tell damage from a torn tail.
// A failed store writes nothing; a barrier that fails marks the store
// failed, and closePebble reports it.
func (d *DB) closeSyncMark() {
	d.marksMu.Lock()
	defer d.marksMu.Unlock()
	defer d.marks.closeFile()
	d.marks.closed = true
	if d.marks.later != nil {
		d.marks.later.Stop() // a callback already running finds closed set
		d.marks.later = nil
	}
	if d.Failed() != nil || d.applySyncBarrier() != nil {
		return
	}
	d.recordSyncMark(true)
	// Once the flush emptied every WAL, the ones Pebble keeps to recycle
	// are removed after it closes (removeRecycledWALs).
	d.closeFlushed = d.flushForClose() && d.pdb.Metrics().WAL.Files == 1
}

// flushForClose flushes the memtable, so that the last mark lives in a table
// the MANIFEST names rather than in a WAL that outlives it: a MANIFEST whose
// last edits are lost then recovers an older mark too, and is refused (and
// the next Open has no WAL to replay). Nothing depends on it for
// durability: the barrier before it synced everything. So it does not wait
// for a flush that fails: Pebble retries a failed flush until it is closed,
// which would make Close hang on a full disk. A failure is logged, and the
// WAL keeps the commits; nor does it fail the store (onBackgroundError).
// It freezes the store's files as a failure would, though: Pebble retries
// the flush until it succeeds, which it does in the fence's overlay, and
// the disk keeps the WAL that holds the commits and a MANIFEST that names
// no table of the overlay. (Otherwise a memtable rotation here, waiting
// for room that only the failing flush makes, would never return.)
// It reports whether the flush completed on disk. (Reporting a flush
// that failed, and then completed in the overlay, let Close remove the WAL
// that held every commit since the last table: found by a test that
// failed once in thousands of runs.)
func (d *DB) flushForClose() bool {
	d.closeFlush.Store(true)
	select { // forget an error from before (the channel holds one signal)
	case <-d.bgSignal:
	default:
	}
	flushed, err := d.pdb.AsyncFlush()
	if err == nil {
		if closeFlushStarted != nil {
			closeFlushStarted()
		}
		select {
		case <-flushed:
			// A flush that failed and then succeeded in the overlay
			// signals both (in either order): it reached only memory.
			if !d.frozen.Load() {
				return true
			}
			err = errors.New("it failed (logged), and its retry reached only memory")
		case <-d.bgSignal:
			err = errors.New("a storage background error (logged) stopped it")
		}
	}
	d.log.Error().Err(err).Msg("strata: the memtable could not be flushed at Close; the WAL keeps its commits")
	return false
}

// closeFlushStarted, if set, runs once Close's flush has been started and
// before its outcome is awaited. (For tests only.)
var closeFlushStarted func()

// removeRecycledWALs removes, after Pebble closed a store that Close
// flushed whole, every WAL but the newest. Pebble keeps a few obsolete WALs
// to reuse their files, and each still holds the commits it logged, the
// last one Close's final sync mark. A MANIFEST that lost its last edits
// would name an older WAL as the first to replay, and Pebble would then
// replay those kept files: the store would open with the final mark and
// without the tables of every WAL deleted in between, and the sync mark
// check would not see the loss. Without them that MANIFEST recovers an
// older mark and is refused. The newest WAL is the live one (a reused file
// is renamed to a new, higher number), and Close's flush left it empty.
// It runs before the store's lock is released, so that no other process
// opens the store (and reuses these files) meanwhile. A failure is logged:
// the store keeps every commit either way, only the check is weaker.
func (d *DB) removeRecycledWALs() {
	m := &d.marks
	if m.fs == nil {
		return
	}
	logs, err := wal.Scan(wal.Dir{FS: m.fs, Dirname: m.dir}) // in increasing number
	if err != nil {
		d.log.Warn().Err(err).Msg("strata: cannot list the store to remove recycled WALs")
		return
	}
	removed := false
	for _, ll := range logs[:max(len(logs)-1, 0)] {
		for i := range ll.NumSegments() {
			fs, path := ll.SegmentLocation(i)
			if err := fs.Remove(path); err != nil {
				d.log.Warn().Err(err).Str("file", path).Msg("strata: cannot remove a recycled WAL")
				continue
			}
			removed = true
		}
	}
	if !removed {
		return
	}
	dir, err := m.fs.OpenDir(m.dir)
	if err == nil {
		err = errors.Join(dir.Sync(), dir.Close())
	}
	if err != nil {
		d.log.Warn().Err(err).Msg("strata: cannot sync the store's directory after removing recycled WALs")
	}
}

// applySyncBarrier writes the next sync mark in a synced batch and waits
// for its fsync. A failure marks the store failed (Batch does) and is
// returned. The caller holds marksMu.
func (d *DB) applySyncBarrier() error {
	b := d.NewBatch()
	defer b.Close()
	mark := d.marks.stored + 1
	b.Set(syncMarkKey, keyenc.EncodeUint64(mark))
	if err := b.Apply(true); err != nil {
		return err
	}
	if err := b.SyncWait(); err != nil {
		return err
	}
	d.marks.stored = mark
	return nil
}
