package pebbleadapter

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The store fence.
//
// Pebble cannot survive an error on its WAL or its MANIFEST. The WAL is
// written by a background goroutine; an error there reaches the next
// commit that waits for a sync, and meanwhile Pebble panics on a committing
// goroutine (in DB.commitWrite, once a WAL block fills), or, when the
// memtable rotates, in DB.rotateWAL after it has released DB.mu, so that
// the caller's deferred unlock dies with "fatal error: sync: unlock of
// unlocked mutex", which no recover stops. A MANIFEST error Pebble reports
// through Logger.Fatalf, which it expects never to return; Strata's does
// return, and Pebble then retries the flush whose edit failed and writes a
// second edit for the same data, which a later sync can make durable next
// to the first (two tables with the same keys and sequence numbers: a store
// that panics every time it is opened), or, after a write error, keeps
// failing every edit and stalls writes for good.
//
// So Pebble never sees such an error, and once the store has failed, for
// any cause, its files on disk stay as they were at the failure. Pebble is
// opened on fenceFS, the caller's filesystem with these rules:
//
//   - WAL, MANIFEST and marker files are fenced: the first error of a
//     write, a sync, a stat or a close of one, or of the creation of one,
//     marks the store failed (ErrFailed), and is reported to Pebble as
//     success. (Pebble's Open leaks a goroutine and the store it built when
//     it returns an error after it has replayed the WALs, as it does when
//     the format version marker of a new store cannot be created; fenced,
//     the error fails the store, Open completes, and Strata closes it.)
//   - Once the store has failed, every write and sync of a fenced file is
//     dropped and reported as done (but a failed flush or compaction, which
//     may leave the WAL sound, lets the WAL files Pebble has open take what
//     it still holds for acknowledged commits, if they can), and a fenced
//     file Pebble creates lives in memory only (so no marker moves, and no
//     old WAL is recycled); removing, renaming or linking a file fails,
//     except removing a file created after the failure.
//
// Nothing is acknowledged on the strength of a dropped write: Batch.Apply,
// Batch.SyncWait and SyncBarrier check for the recorded failure after
// Pebble returns, and the failure is recorded before the fenced call
// returns to Pebble, so before Pebble wakes any waiter. Pebble goes on
// believing its writes succeed, and may flush and compact in memory and on
// disk; none of it is named by the MANIFEST on disk, and the tables it
// writes are orphans the next Open deletes.
//
// What stays on disk is what a crash at the instant of the failure would
// leave: a WAL that ends where the failure struck (a torn last record at
// most, in the newest WAL file, which Pebble replays leniently), a MANIFEST
// whose last edit is whole or torn (Pebble ignores a torn last edit), and
// every file either names. A reopen recovers a prefix of the commits; the
// commits that failed are each wholly present or wholly absent, as after
// any failed fsync.
//
// OPTIONS files are behind the fence too (see optionsFile), and so are the
// directory's fsyncs and listings (fencedDir, List). Tables and blob files
// pass through, with these exceptions once the store has failed. A
// flush's tables are written to an overlay in memory (createInOverlay),
// so that the flush succeeds and frees the commits waiting for room in the
// memtables. A compaction's go to disk still (in memory they could hold a
// whole compaction's output in the heap), except while a write stall is in
// progress: then commits wait inside Pebble for a compaction to shrink
// level 0, and only one that succeeds frees them. And a file Pebble
// creates on disk after the failure is an orphan no MANIFEST on disk can
// name, which the fence lets Pebble remove. Their errors are Pebble's to
// handle, except that a failed flush fails the store
// (DB.onBackgroundError), and so does an error creating, writing, syncing
// or closing a compaction's table (compactionFile).

// errFrozen is what removing, renaming or linking a file returns once the
// store has failed. Pebble logs it and keeps the file.
var errFrozen = errors.New("strata: the store failed; its files stay as they are until it is reopened")

// fenceFS is the filesystem Pebble is opened on: fs behind the fence.
type fenceFS struct {
	vfs.FS
	d *DB
}

// frozen reports whether the store's files are frozen: it failed, or the
// flush Close makes last failed (see DB.frozen).
func (fs fenceFS) frozen() bool { return fs.d.frozen.Load() }

// fenced reports whether name is a WAL, a MANIFEST or a marker file.
func (fs fenceFS) fenced(name string) bool {
	base := fs.PathBase(name)
	return walFileName.MatchString(base) || manifestFileName.MatchString(base) || markerFileName.MatchString(base)
}

// Create creates a file; see the rules above.
func (fs fenceFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.open(name, category, func() (vfs.File, error) { return fs.FS.Create(name, category) })
}

// ReuseForWrite recycles an old file under a new name; see the rules above.
func (fs fenceFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.open(newname, category, func() (vfs.File, error) { return fs.FS.ReuseForWrite(oldname, newname, category) })
}

// OpenReadWrite opens a file for writing; see the rules above. (Pebble
// creates its WALs and MANIFESTs with Create or ReuseForWrite; this keeps
// one opened another way behind the fence too.)
func (fs fenceFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.open(name, category, func() (vfs.File, error) { return fs.FS.OpenReadWrite(name, category, opts...) })
}

// open opens a file for writing with open, behind the fence. Once the
// store has failed, a WAL, MANIFEST or marker file is created in memory
// instead, and so is one whose opening fails (which fails
// the store): Pebble gets a working file, and nothing reaches the disk. A
// flush's file, an OPTIONS file, and a compaction's table while a write
// stall is in progress go to the overlay then. Before the failure, a
// compaction's table is a compactionFile, whose errors fail the store.
func (fs fenceFS) open(name string, category vfs.DiskWriteCategory, open func() (vfs.File, error)) (vfs.File, error) {
	frozen := fs.frozen()
	if frozen && fs.fenced(name) {
		return memFile(name, category)
	}
	if frozen && (category == flushCategory || fs.optionsFile(name) ||
		category == compactionCategory && fs.d.writeStalls.Load() > 0) {
		return fs.createInOverlay(name, category)
	}
	f, err := open()
	if !fs.fenced(name) && !fs.optionsFile(name) {
		if frozen && err == nil {
			fs.d.orphans.Store(name, struct{}{})
		}
		if category == compactionCategory {
			if err != nil {
				fs.d.compactionFailed(fmt.Errorf("create %s: %w", name, err))
				return nil, err
			}
			return &compactionFile{File: f, d: fs.d, name: name}, nil
		}
		return f, err
	}
	if err != nil {
		fs.d.Fail(fmt.Errorf("create %s: %w", name, err))
		if fs.optionsFile(name) {
			return fs.createInOverlay(name, category) // where its rename works
		}
		return memFile(name, category)
	}
	return &fencedFile{File: f, d: fs.d, name: name, wal: walFileName.MatchString(fs.PathBase(name))}, nil
}

// flushCategory is the write category Pebble creates a flush's tables and
// blob files with.
const flushCategory vfs.DiskWriteCategory = "pebble-memtable-flush"

// compactionCategory is the write category Pebble creates a compaction's
// tables with.
const compactionCategory vfs.DiskWriteCategory = "pebble-compaction"

// compactionFile is a table a compaction writes: an error writing, syncing
// or closing it fails the store (DB.compactionFailed), and reaches Pebble,
// which then abandons the compaction.
type compactionFile struct {
	vfs.File
	d    *DB
	name string
}

func (f *compactionFile) check(op string, err error) error {
	if err != nil {
		f.d.compactionFailed(fmt.Errorf("%s %s: %w", op, f.name, err))
	}
	return err
}

func (f *compactionFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.check("write", err)
}

func (f *compactionFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.check("write", err)
}

func (f *compactionFile) Sync() error { return f.check("sync", f.File.Sync()) }

func (f *compactionFile) SyncData() error { return f.check("sync", f.File.SyncData()) }

func (f *compactionFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.check("sync", err)
}

func (f *compactionFile) Close() error { return f.check("close", f.File.Close()) }

// optionsFile reports whether name is an OPTIONS file or the temporary file
// Pebble writes one to before renaming it. Pebble's Open writes one last,
// after it may have started a compaction (a flush of what it replayed can
// trigger one); if writing or renaming it fails, Open's cleanup closes the
// table cache under that compaction, which then panics and ends the
// process. So these files are behind the fence as WALs and MANIFESTs are:
// an error creating, writing, syncing, closing or renaming one fails the
// store and is not returned to Pebble (one that fails to be created is
// created in the overlay instead; one whose rename fails is reported
// renamed). Once the store has failed, new ones live in the overlay,
// where they are written and renamed, while the rename of one on disk is
// reported done and moves nothing. Open completes; Strata's Open then
// finds the failure and closes Pebble, whose Close waits for its
// compactions.
func (fs fenceFS) optionsFile(name string) bool {
	return optionsFileName.MatchString(fs.PathBase(name))
}

// createInOverlay creates name in the store's overlay, the filesystem in
// memory where a flush that runs after the failure writes its output, so
// that it succeeds: Pebble would retry a failing flush until it is closed,
// and a commit waiting in Pebble for room in the memtables, which only a
// flush makes, would wait as long, and Pebble's Close (and Open, when it
// flushes what it replayed) with it. Nothing on disk names these files.
// Their size is bounded by the memtables a flush takes: no commit is
// admitted after the failure. (Compactions still write to disk, where the
// tables they write are orphans the fence lets Pebble remove, unless they
// start during a write stall: see open.)
func (fs fenceFS) createInOverlay(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	o := fs.d.overlay
	if err := o.MkdirAll(o.PathDir(name), 0o755); err != nil {
		return nil, err
	}
	f, err := o.Create(name, category)
	if err != nil {
		return nil, err
	}
	fs.d.inOverlay.Store(name, struct{}{})
	return f, nil
}

// overlaid reports whether name is a file in the overlay.
func (fs fenceFS) overlaid(name string) bool {
	_, ok := fs.d.inOverlay.Load(name)
	return ok
}

// Open opens a file for reading, from the overlay if it is there.
func (fs fenceFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	if fs.overlaid(name) {
		return fs.d.overlay.Open(name, opts...)
	}
	return fs.FS.Open(name, opts...)
}

// Stat describes a file, from the overlay if it is there.
func (fs fenceFS) Stat(name string) (vfs.FileInfo, error) {
	if fs.overlaid(name) {
		return fs.d.overlay.Stat(name)
	}
	return fs.FS.Stat(name)
}

// List lists a directory, the overlay's files in it included. A listing
// that fails fails the store, and Pebble gets the overlay's files alone:
// Pebble's Open lists the directory again after the flush of what it
// replayed may have started a compaction, and failing there would close
// its table cache under the compaction, which then panics and ends the
// process (found by a black-box audit). The store is frozen before Pebble
// sees the short listing, so nothing it does with it touches the disk:
// what it would create lives in memory, and it removes nothing.
func (fs fenceFS) List(dir string) ([]string, error) {
	names, err := fs.FS.List(dir)
	if err != nil {
		fs.d.Fail(fmt.Errorf("list %s: %w", dir, err))
		names = nil
	}
	fs.d.inOverlay.Range(func(k, _ any) bool {
		if name := k.(string); fs.PathDir(name) == dir {
			names = append(names, fs.PathBase(name))
		}
		return true
	})
	return names, nil
}

// memFile creates a file of name's base name in a filesystem of its own in
// memory.
func memFile(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	mem := vfs.NewMem()
	return mem.Create(mem.PathBase(name), category)
}

// Remove removes a file, unless the store is frozen and the file was
// there before it froze.
func (fs fenceFS) Remove(name string) error {
	if _, ok := fs.d.inOverlay.LoadAndDelete(name); ok {
		return fs.d.overlay.Remove(name)
	}
	if fs.frozen() {
		if _, orphan := fs.d.orphans.LoadAndDelete(name); !orphan {
			return fmt.Errorf("remove %s: %w", name, errFrozen)
		}
	}
	return fs.FS.Remove(name)
}

// RemoveAll removes a file or a directory tree, unless the store is frozen.
func (fs fenceFS) RemoveAll(name string) error {
	if fs.frozen() {
		return fmt.Errorf("remove %s: %w", name, errFrozen)
	}
	return fs.FS.RemoveAll(name)
}

// Rename renames a file, in the overlay if it is there, unless the store is
// frozen and the file on disk.
func (fs fenceFS) Rename(oldname, newname string) error {
	if fs.overlaid(oldname) {
		if err := fs.d.overlay.Rename(oldname, newname); err != nil {
			return err
		}
		fs.d.inOverlay.Delete(oldname)
		fs.d.inOverlay.Store(newname, struct{}{})
		return nil
	}
	if fs.frozen() {
		if fs.optionsFile(oldname) {
			// An OPTIONS file whose writing failed (see optionsFile):
			// Pebble's Open must complete, so the rename is reported done
			// and nothing on disk moves (the next Open removes the
			// temporary file).
			return nil
		}
		return fmt.Errorf("rename %s: %w", oldname, errFrozen)
	}
	err := fs.FS.Rename(oldname, newname)
	if err != nil && fs.optionsFile(oldname) {
		fs.d.Fail(fmt.Errorf("rename %s: %w", oldname, err)) // see optionsFile
		return nil
	}
	return err
}

// OpenDir opens a directory, behind the fence (see fencedDir).
func (fs fenceFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &fencedDir{File: f, d: fs.d, name: name}, nil
}

// fencedDir is a directory Pebble opened to sync it after it creates,
// renames or removes files there. Pebble takes a failed directory fsync
// for unrecoverable and panics: after its Open that ends the process, and
// in its Open it fails Open, whose cleanup can close its table cache under
// a compaction the flush of what it replayed started, which then panics
// and ends the process. So a failed fsync fails the store, and Pebble is
// told it succeeded. That is sound because the store is then frozen: no
// file on disk is removed or renamed any more, so nothing the failed fsync
// may have left undurable is replaced by what depends on it, every later
// commit fails, and a crash leaves what it would have left at the instant
// of the failure.
type fencedDir struct {
	vfs.File
	d    *DB
	name string
}

func (f *fencedDir) Sync() error {
	if err := f.File.Sync(); err != nil {
		f.d.Fail(fmt.Errorf("sync directory %s: %w", f.name, err))
	}
	return nil
}

// Link links a file under a new name, unless the store is frozen.
func (fs fenceFS) Link(oldname, newname string) error {
	if fs.frozen() {
		return fmt.Errorf("link %s: %w", oldname, errFrozen)
	}
	return fs.FS.Link(oldname, newname)
}

// fencedFile is a WAL, MANIFEST or marker file behind the fence: its first
// error marks the store failed, and once the store has failed (a WAL: once
// the WAL is frozen), writes and syncs are dropped and reported as done.
type fencedFile struct {
	vfs.File
	d    *DB
	name string
	wal  bool
}

func (f *fencedFile) failed() bool {
	if f.wal {
		return f.d.walFrozen.Load()
	}
	return f.d.frozen.Load()
}

// fail records err, an error of op on the file, as the store's failure.
func (f *fencedFile) fail(op string, err error) {
	f.d.Fail(fmt.Errorf("%s %s: %w", op, f.name, err))
}

func (f *fencedFile) Write(p []byte) (int, error) {
	if !f.failed() {
		n, err := f.File.Write(p)
		if err == nil {
			return n, nil
		}
		f.fail("write", err)
	}
	return len(p), nil
}

func (f *fencedFile) WriteAt(p []byte, off int64) (int, error) {
	if !f.failed() {
		n, err := f.File.WriteAt(p, off)
		if err == nil {
			return n, nil
		}
		f.fail("write", err)
	}
	return len(p), nil
}

func (f *fencedFile) Sync() error {
	if !f.failed() {
		if err := f.File.Sync(); err != nil {
			f.fail("sync", err)
		}
	}
	return nil
}

func (f *fencedFile) SyncData() error {
	if !f.failed() {
		if err := f.File.SyncData(); err != nil {
			f.fail("sync", err)
		}
	}
	return nil
}

func (f *fencedFile) SyncTo(length int64) (fullSync bool, _ error) {
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
// creation: so a failed Stat fails the store as well, and reports the
// information of an empty in-memory file of the same name instead.
func (f *fencedFile) Stat() (vfs.FileInfo, error) {
	info, err := f.File.Stat()
	if err == nil {
		return info, nil
	}
	f.fail("stat", err)
	m, err := memFile(f.name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.Stat()
}

// Close closes the file. The descriptor is released even once the store
// has failed; an error closing it fails the store, as a write error would,
// since a close can report a write that did not reach the disk.
func (f *fencedFile) Close() error {
	if err := f.File.Close(); err != nil && !f.failed() {
		f.fail("close", err)
	}
	return nil
}
