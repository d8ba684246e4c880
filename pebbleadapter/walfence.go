package pebbleadapter

import (
	"fmt"
	"regexp"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// WAL fencing.
//
// Pebble cannot survive an error on its WAL. The WAL is written by a
// background goroutine; an error there reaches the next commit that waits
// for a sync, and meanwhile Pebble panics on a committing goroutine (in
// DB.commitWrite, once a WAL block fills), or, when the memtable rotates, in
// DB.rotateWAL after it has released DB.mu, so that the caller's deferred
// unlock dies with "fatal error: sync: unlock of unlocked mutex", which no
// recover stops. A write error in an unsynced mode (a full disk) therefore
// used to end the process.
//
// So Pebble never sees one. Every WAL file Pebble creates is handed out
// through walFS, and the first error of a write, a sync, a stat or a close
// of a WAL file, or of the creation of one, marks the store failed (ErrFailed) and
// fences the WAL off: from then on every WAL write and sync of this store
// is dropped and reported to Pebble as done, and a WAL Pebble creates
// afterwards lives in memory only. (A failure with another cause, a
// MANIFEST error say, fails the store but leaves the WAL as it is: the
// commits acknowledged before it still reach the disk.) Nothing is acknowledged on the strength
// of that: Batch.Apply, Batch.SyncWait and SyncBarrier check for the
// recorded failure after Pebble returns, and the failure is recorded before
// the fenced call returns to Pebble, so before Pebble wakes any waiter.
//
// What stays on disk is a WAL that ends where the failure struck, which is
// what a crash at that instant leaves: a torn last record at most, and only
// in the newest WAL file, since no WAL file reaches the disk after the
// failure. Pebble replays the newest WAL leniently, so a reopen recovers a
// prefix of the commits; the commits that failed are each wholly present or
// wholly absent (a memtable Pebble flushes after the failure holds them
// whole), as after any failed fsync.
//
// Reads of WAL files (replay at Open) and every other file pass through
// untouched: only the WAL is fenced, because only its errors bring Pebble
// down, and a table or MANIFEST write reported as done when it was not
// could let Pebble delete the WAL that still holds its data.

// walFileName matches the WAL file names Pebble creates: 000123.log, and
// 000123-001.log after a failover.
var walFileName = regexp.MustCompile(`^[0-9]+(-[0-9]+)?\.log$`)

// walFS is the filesystem Pebble is opened on: fs with its WAL fenced.
type walFS struct {
	vfs.FS
	d *DB
}

func (fs walFS) isWAL(name string) bool { return walFileName.MatchString(fs.PathBase(name)) }

// Create creates a file; a WAL file is fenced.
func (fs walFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if !fs.isWAL(name) {
		return fs.FS.Create(name, category)
	}
	return fs.openWAL(name, category, func() (vfs.File, error) { return fs.FS.Create(name, category) })
}

// ReuseForWrite recycles an old file under a new name; a WAL file is fenced.
func (fs walFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if !fs.isWAL(newname) {
		return fs.FS.ReuseForWrite(oldname, newname, category)
	}
	return fs.openWAL(newname, category, func() (vfs.File, error) { return fs.FS.ReuseForWrite(oldname, newname, category) })
}

// OpenReadWrite opens a file for writing; a WAL file is fenced. (Pebble
// opens WALs with Create or ReuseForWrite; this keeps a WAL opened another
// way fenced too.)
func (fs walFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	if !fs.isWAL(name) {
		return fs.FS.OpenReadWrite(name, category, opts...)
	}
	return fs.openWAL(name, category, func() (vfs.File, error) { return fs.FS.OpenReadWrite(name, category, opts...) })
}

// openWAL opens a WAL file with open and fences it. Once the WAL has failed
// (or if open fails, which fails it), the file is created in memory
// instead: Pebble gets a working file, and nothing reaches the disk.
func (fs walFS) openWAL(name string, category vfs.DiskWriteCategory, open func() (vfs.File, error)) (vfs.File, error) {
	if !fs.d.walFenced.Load() {
		f, err := open()
		if err == nil {
			return &walFile{File: f, d: fs.d, name: name}, nil
		}
		fs.d.failWAL(fmt.Errorf("create WAL %s: %w", name, err))
	}
	return memWAL(name, category)
}

// memWAL creates a file of name's base name in a filesystem of its own in
// memory.
func memWAL(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	mem := vfs.NewMem()
	return mem.Create(mem.PathBase(name), category)
}

// walFile is a fenced WAL file: its first error marks the store failed,
// and from then on, as for every WAL file of the store, writes and syncs
// are dropped and reported as done.
type walFile struct {
	vfs.File
	d    *DB
	name string
}

// failed reports whether the WAL is fenced off.
func (f *walFile) failed() bool { return f.d.walFenced.Load() }

// fail records err, an error of op on the file, as the store's failure,
// and fences the WAL off.
func (f *walFile) fail(op string, err error) {
	f.d.failWAL(fmt.Errorf("WAL %s %s: %w", op, f.name, err))
}

// failWAL marks the store failed with cause, an error of its WAL, and then
// fences the WAL off. Both happen before the fenced call returns to Pebble,
// so before Pebble wakes a commit waiting on the WAL: the commit's check for
// a recorded failure sees it.
func (d *DB) failWAL(cause error) {
	d.Fail(cause)
	d.walFenced.Store(true)
}

func (f *walFile) Write(p []byte) (int, error) {
	if !f.failed() {
		n, err := f.File.Write(p)
		if err == nil {
			return n, nil
		}
		f.fail("write", err)
	}
	return len(p), nil
}

func (f *walFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.failed() {
		n, err := f.File.WriteAt(p, off)
		if err == nil {
			return n, nil
		}
		f.fail("write", err)
	}
	return len(p), nil
}

func (f *walFile) Sync() error {
	if !f.failed() {
		if err := f.File.Sync(); err != nil {
			f.fail("sync", err)
		}
	}
	return nil
}

func (f *walFile) SyncData() error {
	if !f.failed() {
		if err := f.File.SyncData(); err != nil {
			f.fail("sync", err)
		}
	}
	return nil
}

func (f *walFile) SyncTo(length int64) (fullSync bool, _ error) {
	if !f.failed() {
		full, err := f.File.SyncTo(length)
		if err == nil {
			return full, nil
		}
		f.fail("sync", err)
	}
	return false, nil
}

// Stat returns the file's information. Pebble stats a recycled WAL as it
// creates the next one, and treats an error there as it treats a failed
// creation: so a failed Stat fails the WAL as well, and reports the
// information of an empty in-memory file of the same name instead.
func (f *walFile) Stat() (vfs.FileInfo, error) {
	info, err := f.File.Stat()
	if err == nil {
		return info, nil
	}
	f.fail("stat", err)
	m, err := memWAL(f.name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.Stat()
}

// Close closes the file. The descriptor is released even once the WAL has
// failed; an error closing it fails the store, as a write error would,
// since a close can report a write that did not reach the disk.
func (f *walFile) Close() error {
	if err := f.File.Close(); err != nil && !f.failed() {
		f.fail("close", err)
	}
	return nil
}
