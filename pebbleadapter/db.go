package pebbleadapter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/rs/zerolog"
	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/keyenc"
)

// FS is Pebble's filesystem interface. Strata's options accept any FS:
// vfs.Default (the real disk), vfs.NewMem, vfs.NewCrashableMem, or an
// errorfs wrapper for fault injection.
type FS = vfs.FS

// NewMemFS returns a fresh in-memory filesystem.
func NewMemFS() FS { return vfs.NewMem() }

// Options configure Open. The zero value opens "." on the real disk with
// Pebble's defaults.
type Options struct {
	// Dir is the store's directory within FS.
	Dir string
	// FS is the filesystem. nil means the real disk.
	FS FS
	// MemTableSize is Pebble's memtable size in bytes; 0 keeps Pebble's.
	MemTableSize uint64
	// CacheSize is the block cache size in bytes; 0 keeps Pebble's.
	CacheSize int64
	// Logger receives Pebble's log lines and background errors.
	Logger zerolog.Logger
}

const (
	stateOpen int32 = iota
	stateClosing
	stateClosed
)

// DB is an open Pebble store behind Strata's gate.
type DB struct {
	pdb *pebble.DB
	log zerolog.Logger

	state    atomic.Int32
	inflight atomic.Int64
	failure  atomic.Pointer[error]
	// walFrozen: writes and syncs of the WAL files Pebble has open are
	// dropped (see fence.go). Every failure sets it but a failed flush or
	// compaction, which may leave the WAL sound (a fault confined to
	// tables).
	walFrozen atomic.Bool
	// frozen: the store's files on disk stay as they are (see fence.go).
	// Every failure sets it, and so does a failure of the flush Close makes
	// after its last sync, which does not fail the store.
	frozen   atomic.Bool
	failedCh chan struct{} // closed once failure is set

	closeOnce sync.Once
	closeErr  error

	pointIters chan *Iter  // cached point-read iterators, see AcquirePointIter
	iterSweep  atomic.Bool // a sweep of pointIters is scheduled

	bgErrors   atomic.Int64  // background errors seen, for rate-limited logging
	bgSignal   chan struct{} // a background error happened (capacity 1)
	lastBgLog  atomic.Int64  // unix nanos of the last logged background error
	corruption atomic.Int64  // DataCorruption events seen
	// flushErr is the error of the last flush that failed, from FlushEnd,
	// until Pebble reports it as a background error (see onFlushEnd).
	flushErr atomic.Pointer[error]
	// closeFlush: Close synced everything and flushes the memtable last; a
	// failure of that flush loses nothing and does not fail the store.
	closeFlush atomic.Bool
	// writeStalls counts the write stalls in progress: commits waiting in
	// Pebble for room in the memtables or for level 0 to shrink (see
	// fence.go).
	writeStalls atomic.Int32
	// orphans holds the names of the files Pebble created after the store
	// failed, which the fence lets it remove (see fence.go).
	orphans sync.Map
	// overlay holds the files of flushes that run after the failure, named
	// in inOverlay (see fence.go).
	overlay   vfs.FS
	inOverlay sync.Map

	marksMu sync.Mutex // orders sync barriers; guards marks
	marks   syncMarks
	// closeFlushed: Close's flush left no WAL but the live one holding
	// data (see removeRecycledWALs).
	closeFlushed bool

	// lock holds the directory (Pebble's lock, and the claim of claimDir)
	// until Pebble has closed.
	lock *claimedLock
}

// Open opens or creates a store. A directory held by another process or
// another open DB returns an error matching serr.ErrLocked at once; a store
// written by something other than Strata, or by a newer Strata, returns
// serr.ErrCorruption.
func Open(o Options) (*DB, error) {
	d := &DB{log: o.Logger, pointIters: make(chan *Iter, 4*runtime.GOMAXPROCS(0)), bgSignal: make(chan struct{}, 1), failedCh: make(chan struct{}), overlay: vfs.NewMem()}
	fs := o.FS
	if fs == nil {
		fs = vfs.Default
	}
	o.Dir = memDir(fs, o.Dir)
	if err := fs.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("strata: create %q: %w", o.Dir, err)
	}
	// The lock is taken before anything in the directory is read: another
	// process's Open or Close may be changing its files until then.
	dir, lock, err := lockDir(fs, o.Dir)
	if err != nil {
		return nil, err
	}
	d.lock = lock
	opened := false
	defer func() {
		if !opened {
			_ = lock.Close() // Pebble never opened; once it has, closePebble releases
		}
	}()
	popts := &pebble.Options{
		FS:                 fenceFS{FS: fs, d: d}, // see fence.go
		Comparer:           Comparer,
		FormatMajorVersion: pebble.FormatNewest,
		Lock:               lock.Lock,
		Logger:             pebbleLogger{d},
		MemTableSize:       o.MemTableSize,
		CacheSize:          o.CacheSize,
		EventListener: &pebble.EventListener{
			BackgroundError: d.onBackgroundError,
			FlushEnd:        d.onFlushEnd,
			DataCorruption:  d.onCorruption,
			WriteStallBegin: func(pebble.WriteStallBeginInfo) { d.writeStalls.Add(1) },
			WriteStallEnd:   func() { d.writeStalls.Add(-1) },
		},
	}
	for i := range popts.Levels {
		// Point reads are SeekPrefixGE calls: bloom filters on the prefix
		// let them skip tables that lack the key.
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if _, err := peek(dir, fs); err != nil {
		lock.removeCreated()
		return nil, err
	}
	pdb, err := openPebble(dir, popts)
	if err != nil {
		if f := d.Failed(); f != nil {
			// A fault during Open's replay failed the store, and the
			// fence then refused what Pebble did next: the fault is the
			// cause.
			return nil, fmt.Errorf("strata: open %q: %w", o.Dir, f)
		}
		return nil, mapOpenError(o.Dir, err)
	}
	d.pdb, opened = pdb, true
	if err := d.Err(); err != nil {
		_ = d.closePebble()
		return nil, err
	}
	if err := d.checkFormat(); err != nil {
		_ = d.closePebble()
		return nil, err
	}
	if err := d.checkSyncMark(fs, dir); err != nil {
		_ = d.closePebble()
		return nil, err
	}
	return d, nil
}

// openPebble is pebble.Open with a panic turned into an error. Pebble
// panics when an fsync of the directory fails as it moves one of its
// marker files (it takes fsync errors for unrecoverable); its Open releases
// the directory lock and what else it took before the panic goes on.
func openPebble(dir string, o *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("pebble panicked: %w", e)
			} else {
				err = fmt.Errorf("pebble panicked: %v", r)
			}
		}
	}()
	return pebble.Open(dir, o)
}

// mapOpenError gives an error of pebble.Open its Strata sentinel.
func mapOpenError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.EAGAIN), strings.Contains(err.Error(), "lock held by current process"):
		// EAGAIN: another process holds the flock (or, on MemFS, another
		// DB). Pebble's own in-process lock table reports the same case
		// with an unexported error whose text we match.
		return fmt.Errorf("%w: %s: %v", serr.ErrLocked, dir, err)
	case pebble.IsCorruptionError(err):
		return fmt.Errorf("%w: open %s: %v", serr.ErrCorruption, dir, err)
	case errors.Is(err, os.ErrNotExist):
		// The directory exists (Open creates it), so what is missing is a
		// file the MANIFEST names: a table deleted, or a MANIFEST whose
		// last edits are lost after Pebble deleted the files they retired.
		return fmt.Errorf("%w: open %s: a file the store needs is missing: %v", serr.ErrCorruption, dir, err)
	case errors.Is(err, pebble.ErrDBNotPristine):
		// Pebble found no format version marker, took the store for a new
		// one, and then found data.
		return fmt.Errorf("%w: open %s: the store's format version marker is missing: %v", serr.ErrCorruption, dir, err)
	case errors.Is(err, pebble.ErrDBAlreadyExists), errors.Is(err, pebble.ErrDBDoesNotExist):
		return fmt.Errorf("strata: open %s: %w", dir, err)
	}
	if msg := err.Error(); strings.Contains(msg, "comparer") {
		return fmt.Errorf("%w: %s is not a Strata store of this format: %v", serr.ErrCorruption, dir, err)
	}
	return fmt.Errorf("strata: open %s: %w", dir, err)
}

// LockFileName is the name of Pebble's lock file in a store's directory.
const LockFileName = "LOCK"

// LockDirectory takes the lock an open store holds on dir (Pebble's LOCK
// file), so that no store opens dir until the returned lock is closed. It
// fails with ErrLocked while a store holds dir. Tools use it to delete a
// store safely.
func LockDirectory(dir string, fs vfs.FS) (io.Closer, error) {
	if fs == nil {
		fs = vfs.Default
	}
	_, l, err := lockDir(fs, memDir(fs, dir))
	if err != nil {
		return nil, err
	}
	return l, nil
}

// lockDir claims dir for this process (claimDir) and takes Pebble's lock on
// it, as Open does before it reads anything there, so that no other
// process's Open changes the files meanwhile. It returns the path to open
// the store by (lockPath). Pebble creates, or empties, a LOCK file it never
// writes to: one that holds bytes is not Pebble's, and is left alone
// (ErrCorruption), as are the files it may be a symbolic link to.
func lockDir(fs vfs.FS, dir string) (string, *claimedLock, error) {
	path, err := lockPath(fs, dir)
	if err != nil {
		return "", nil, fmt.Errorf("strata: lock %q: %w", dir, err)
	}
	claim, err := claimDir(fs, dir)
	if err != nil {
		return "", nil, err
	}
	lockFile := fs.PathJoin(path, LockFileName)
	fi, statErr := fs.Stat(lockFile)
	if statErr == nil && (fi.IsDir() || fi.Size() > 0) || isSymlink(fs, lockFile) {
		claim.release()
		return "", nil, fmt.Errorf("%w: %s is not Pebble's lock file (which is an empty file); it is left alone", serr.ErrCorruption, lockFile)
	}
	l, err := pebble.LockDirectory(path, fs)
	if err != nil {
		claim.release()
		return "", nil, mapOpenError(dir, err)
	}
	return path, &claimedLock{Lock: l, claim: claim, fs: fs, file: lockFile, created: errors.Is(statErr, os.ErrNotExist)}, nil
}

// isSymlink reports whether name is a symbolic link on the real disk (a
// vfs.FS has no Lstat). Pebble never makes its lock file one; locking
// through one, a dangling one too, would create or lock a file elsewhere.
func isSymlink(fs vfs.FS, name string) bool {
	if fs != vfs.Default {
		return false
	}
	fi, err := os.Lstat(name)
	return err == nil && fi.Mode()&os.ModeSymlink != 0
}

// claimedLock is the lock lockDir takes: Pebble's, and the directory's
// claim.
type claimedLock struct {
	*pebble.Lock
	claim   dirClaim
	fs      vfs.FS
	file    string
	created bool // the lock file did not exist before
}

// removeCreated removes the lock file if lockDir created it: Open refused
// the directory (a store of another program, a damaged one), and leaves it
// as it found it. Only the holder of the lock removes it.
func (l *claimedLock) removeCreated() {
	if l.created {
		_ = l.fs.Remove(l.file)
	}
}

// Close releases Pebble's lock, then the claim. A store opened with the
// lock must have been closed first.
func (l *claimedLock) Close() error {
	defer l.claim.release()
	return l.Lock.Close()
}

// lockPath returns the path under which dir is opened and locked: on the
// real disk, its absolute path with symbolic links resolved; on any other
// filesystem, dir as given (it names directories its own way, and fault
// injectors match the names they see). Pebble's lock table, keyed by this
// path, refuses a second open in the process by the same spelling; the
// claims (claimDir) refuse the other spellings.
func lockPath(fs vfs.FS, dir string) (string, error) {
	if fs != vfs.Default {
		return dir, nil
	}
	return realPath(dir)
}

// memDir returns dir cleaned (filepath.Clean) on a vfs.MemFS or a wrapper
// of one, dir as given elsewhere. A MemFS takes "." and ".." for names like
// any other (its MkdirAll("./db") makes a directory named "."), while Pebble
// joins the names of its files with filepath.Join, which cleans them: given
// "./db", Pebble would look for db/LOCK in a directory Open never made.
// With no symbolic links on a MemFS, the cleaned path is the same
// directory. Its root, which a MemFS names "" (or "/"), stays so: Clean
// would make "" ".", which a MemFS does not resolve. (The real disk
// resolves "." and ".." itself.)
func memDir(fs vfs.FS, dir string) string {
	if _, ok := vfs.Root(fs).(*vfs.MemFS); !ok {
		return dir
	}
	if c := filepath.Clean(dir); c != "." {
		return c
	}
	return ""
}

// realPath returns dir's absolute path on the real disk with symbolic links
// resolved.
func realPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// The OS lock does not stop a second lock by the same process, and
// Pebble's lock table is keyed by the path as Pebble sees it, so within a
// process the directories open (or locked by LockDirectory) are claimed
// here by their identity, however they are spelled:
//
//   - on the real disk, also through wrappers (an FS whose vfs.Root is
//     vfs.Default, like Pebble's errorfs or disk-health checks, which keep
//     its names): the directory itself (os.SameFile: its device and inode),
//     so that a directory renamed while open, or reached through a bind
//     mount or a hard-linked parent, is still the one held; the absolute
//     path with symbolic links resolved names it in messages;
//   - on a MemFS (or a wrapper of one): that MemFS and the path cleaned and
//     rooted, since its working directory is its root and Pebble joins
//     file names with filepath.Join ("db", "/db" and "db/." are one
//     directory).
//
// Other filesystems name directories their own way: only Pebble's lock
// table (the path as given) applies there.
var claims struct {
	sync.Mutex
	held map[dirKey]os.FileInfo // the directory's, on the real disk
}

// dirKey identifies a directory: the filesystem at the root of the
// wrappers, and the directory's canonical path in it.
type dirKey struct {
	root vfs.FS
	path string
}

// dirClaim is a held claim; the zero value holds nothing.
type dirClaim struct {
	key  dirKey
	once *sync.Once
}

// claimDir claims dir on fs for this process, or returns ErrLocked if an
// open store or LockDirectory holds it already.
func claimDir(fs vfs.FS, dir string) (dirClaim, error) {
	root := vfs.Root(fs)
	var (
		key  dirKey
		info os.FileInfo
	)
	switch r := root.(type) {
	case *vfs.MemFS:
		key = dirKey{root: r, path: filepath.Clean(string(filepath.Separator) + dir)}
	default:
		if root != vfs.Default {
			return dirClaim{}, nil
		}
		path, err := realPath(dir)
		if err == nil {
			info, err = os.Stat(path)
		}
		if err != nil {
			return dirClaim{}, fmt.Errorf("strata: open %q: %w", dir, err)
		}
		key = dirKey{root: root, path: path}
	}
	claims.Lock()
	defer claims.Unlock()
	for k, held := range claims.held {
		if k == key || info != nil && held != nil && os.SameFile(info, held) {
			return dirClaim{}, fmt.Errorf("%w: %s: the directory (%s) is open in this process", serr.ErrLocked, dir, k.path)
		}
	}
	if claims.held == nil {
		claims.held = map[dirKey]os.FileInfo{}
	}
	claims.held[key] = info
	return dirClaim{key: key, once: new(sync.Once)}, nil
}

// release gives the claim up; it is idempotent.
func (c dirClaim) release() {
	if c.once == nil {
		return
	}
	c.once.Do(func() {
		claims.Lock()
		defer claims.Unlock()
		delete(claims.held, c.key)
	})
}

// CheckComparer checks, without opening the store (no recovery, no lock),
// that dir on fs holds Pebble files written with Strata's comparer, as its
// newest OPTIONS file records. It needs only that file, so it also tells a
// store whose other files are damaged or partly deleted. Files of another
// comparer, or a directory without an OPTIONS file (whose comparer cannot
// be told), are ErrCorruption.
func CheckComparer(dir string, fs vfs.FS) error {
	if fs == nil {
		fs = vfs.Default
	}
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("strata: %s: %w", dir, err)
	}
	return checkOptionsFile(dir, fs, names, true)
}

// checkOptionsFile checks the newest OPTIONS file in the listing names of
// dir (the one Pebble checks) against Strata's settings: a different
// comparer or merger, or a file that does not parse, is ErrCorruption (a
// store of another program, or a damaged file). Without an OPTIONS file it
// is ErrCorruption if required, nil otherwise.
func checkOptionsFile(dir string, fs vfs.FS, names []string, required bool) error {
	newest, found := uint64(0), ""
	for _, name := range names {
		digits, ok := strings.CutPrefix(name, "OPTIONS-")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(digits, 10, 64); err == nil && (found == "" || n > newest) {
			newest, found = n, name
		}
	}
	if found == "" {
		if !required {
			return nil
		}
		return fmt.Errorf("%w: %s has no Pebble OPTIONS file; its comparer cannot be told", serr.ErrCorruption, dir)
	}
	f, err := fs.Open(fs.PathJoin(dir, found))
	if err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	o := &pebble.Options{Comparer: Comparer}
	o.EnsureDefaults()
	if err := o.CheckCompatibility(dir, string(b)); err != nil {
		return fmt.Errorf("%w: %s: %s does not match a Strata store's settings (another program's store, or a damaged file): %v",
			serr.ErrCorruption, dir, found, err)
	}
	return nil
}

// Exists reports whether dir on fs holds a Pebble store, without opening
// it or writing anything (a missing dir holds none). A directory that holds
// a store's data files but no valid manifest marker is ErrCorruption, not
// an absent store.
func Exists(dir string, fs vfs.FS) (bool, error) {
	if fs == nil {
		fs = vfs.Default
	}
	dir = memDir(fs, dir)
	if _, err := fs.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return peek(dir, fs)
}

// peek reports whether dir holds a Pebble store, as Pebble tells it: by the
// manifest marker, the file whose name points at the current MANIFEST. A
// directory without a marker is a new store to Pebble, which creates one
// and then deletes every table and WAL the new MANIFEST does not name, so a
// lost or damaged marker would wipe the data it no longer points at. peek
// refuses that case: no marker, but tables, WALs, blob files, OPTIONS
// files or a sync mark file, which are written only after the marker is
// placed. A crash while a store is created leaves at most its first
// MANIFEST, which is not refused.
func peek(dir string, fs vfs.FS) (bool, error) {
	names, err := fs.List(dir)
	if err != nil {
		return false, fmt.Errorf("strata: %s: %w", dir, err)
	}
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		if isIOError(err) {
			// Peek lists and opens the directory again: a fault there
			// says nothing of the store.
			return false, fmt.Errorf("strata: %s: %w", dir, err)
		}
		// What Peek refuses in a directory it could read is the name of a
		// marker file that does not parse, or a format it does not know.
		return false, fmt.Errorf("%w: %s: %w", serr.ErrCorruption, dir, err)
	}
	if desc.Exists {
		if desc.FormatMajorVersion == pebble.FormatDefault {
			// Creating a store, Pebble places the manifest marker, creates
			// the first WAL, then places the format version marker, and
			// writes the OPTIONS file last. A creation cut short there (a
			// crash, a failed fsync) is no store yet: Pebble retries it,
			// and refuses one whose MANIFEST or WAL holds data
			// (ErrDBNotPristine, which mapOpenError makes ErrCorruption).
			// A store with an OPTIONS file, a table, a blob file or a
			// sync mark file was created whole and has lost its marker.
			for _, name := range names {
				if name == SyncMarkFileName || (dataFileName.MatchString(name) && !walFileName.MatchString(name)) {
					return false, fmt.Errorf("%w: %s has a manifest marker but no format version marker", serr.ErrCorruption, dir)
				}
			}
			return false, nil
		}
		// Pebble checks the OPTIONS file too, but reports a mismatch
		// without a type. A crash just after the store was created can
		// leave none.
		return true, checkOptionsFile(dir, fs, names, false)
	}
	for _, name := range names {
		if dataFileName.MatchString(name) || name == SyncMarkFileName {
			return false, fmt.Errorf("%w: %s holds Pebble file %s but no manifest marker; refusing to start a new store over it",
				serr.ErrCorruption, dir, name)
		}
		if name == currentFileName {
			// The manifest pointer of LevelDB, RocksDB and Pebble stores of
			// formats before markers, which Strata never writes: a store of
			// another format (Pebble would refuse it, without a type).
			return false, fmt.Errorf("%w: %s holds a %s file, a store of a format older than Strata's; refusing to start a new store over it",
				serr.ErrCorruption, dir, name)
		}
	}
	return false, nil
}

// currentFileName is the manifest pointer of stores of older formats.
const currentFileName = "CURRENT"

// isIOError reports whether err comes from the filesystem: an operating
// system error (a *fs.PathError or a syscall.Errno), or errorfs's injected
// one. Pebble's own errors about what it read carry neither.
func isIOError(err error) bool {
	var pathErr *os.PathError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &errno) || errors.Is(err, errorfs.ErrInjected)
}

// Names of the files in a store's directory. dataFileName matches those
// Pebble writes only after it has placed the manifest marker: tables
// (000123.sst), WALs (000123.log, 000123-001.log after a failover), blob
// files (000123.blob) and OPTIONS files (OPTIONS-000123); walFileName the
// WALs among them. The rest of Pebble's are its manifests, its markers
// (marker.<name>.<iteration>.<value>), and otherFileName: its lock,
// CURRENT and temporary files.
var (
	dataFileName     = regexp.MustCompile(`^(OPTIONS-[0-9]+|[0-9]+(-[0-9]+)?\.(sst|log|blob))$`)
	walFileName      = regexp.MustCompile(`^[0-9]+(-[0-9]+)?\.log$`)
	manifestFileName = regexp.MustCompile(`^MANIFEST-[0-9]+$`)
	markerFileName   = regexp.MustCompile(`^marker\.[a-z-]+\.[0-9]+\.[A-Za-z0-9.-]+$`)
	optionsFileName  = regexp.MustCompile(`^(OPTIONS-[0-9]+|temporary\.[0-9]+\.dbtmp)$`)
	otherFileName    = regexp.MustCompile(`^(LOCK|CURRENT|(CURRENT|temporary)\.[0-9]+\.dbtmp)$`)
)

// IsStoreFile reports whether name is one the files of a store have:
// Pebble's, or Strata's sync mark file. Tools use it to refuse deleting a
// directory that holds anything else; a name Pebble uses that is missing
// here only makes them refuse.
func IsStoreFile(name string) bool {
	return name == SyncMarkFileName || dataFileName.MatchString(name) || manifestFileName.MatchString(name) ||
		markerFileName.MatchString(name) || otherFileName.MatchString(name)
}

// checkFormat writes the format record into a new store, or checks it in an
// existing one. A store that holds keys but no format record is refused:
// whatever wrote it, it is not a Strata store of this format.
func (d *DB) checkFormat() error {
	key := keyenc.SystemKey(keyenc.SysFormat)
	v, err := d.Get(key)
	switch {
	case errors.Is(err, serr.ErrNotFound):
		if empty, err := d.isEmpty(); err != nil || !empty {
			return cmp.Or(err, fmt.Errorf("%w: the store holds keys but no format record", serr.ErrCorruption))
		}
		if err := d.pdb.Set(key, keyenc.EncodeFormat(), pebble.Sync); err != nil {
			return d.mapError(err)
		}
		// A new Pebble store writes its first WAL before it raises its
		// format to FormatNewest, so that WAL lacks the synced-offset
		// chunks that let recovery tell damage in the middle of a WAL from
		// a torn tail (it would recover a prefix and silently drop the
		// commits after the damage). Rotate to a WAL written in the new
		// format before any commit.
		return d.flushOrFail()
	case err != nil:
		return err
	}
	ver, err := keyenc.DecodeFormat(v)
	if err != nil {
		return err
	}
	if ver != keyenc.FormatVersion {
		return fmt.Errorf("%w: store format %d, this Strata reads format %d", serr.ErrCorruption, ver, keyenc.FormatVersion)
	}
	return nil
}

// isEmpty reports whether the store holds no key at all.
func (d *DB) isEmpty() (bool, error) {
	it, err := d.pdb.NewIter(nil)
	if err != nil {
		return false, d.mapError(err)
	}
	found := it.First()
	return !found, errors.Join(it.Error(), it.Close())
}

// Enter admits one operation through the gate. It fails with ErrClosed once
// Close or Shutdown has begun and with ErrFailed after a storage failure.
// Every successful Enter must be paired with one Leave.
func (d *DB) Enter() error {
	d.inflight.Add(1)
	if err := d.Err(); err != nil {
		d.inflight.Add(-1)
		return err
	}
	return nil
}

// Leave ends an operation admitted by Enter.
func (d *DB) Leave() { d.inflight.Add(-1) }

// Err returns nil while the store accepts operations, an error matching
// ErrFailed after a storage failure, or ErrClosed after Close began.
func (d *DB) Err() error {
	if p := d.failure.Load(); p != nil {
		return *p
	}
	if d.state.Load() != stateOpen {
		return serr.ErrClosed
	}
	return nil
}

// Failed returns the recorded failure, or nil.
func (d *DB) Failed() error {
	if p := d.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// Fail marks the store failed with cause, unless it already failed, and
// freezes the WAL. Every later Enter returns an error matching ErrFailed
// that wraps cause.
func (d *DB) Fail(cause error) { d.failWith(cause, true) }

// fail is Fail without freezing the WAL: the records Pebble holds for
// commits acknowledged before the failure still reach it.
func (d *DB) fail(cause error) { d.failWith(cause, false) }

// failWith records the failure, then freezes the files (and the WAL if
// freezeWAL). The order matters: once frozen, the fence drops writes and
// fsyncs and reports them done, and Pebble may then wake a committer
// waiting on them, who checks Failed before acknowledging; that check must
// find the failure. (Freezing first let a Strict commit whose fsync the
// fence had dropped be acknowledged, and lost: found by a black-box audit.)
func (d *DB) failWith(cause error, freezeWAL bool) {
	err := fmt.Errorf("%w: %w", serr.ErrFailed, cause)
	first := d.failure.CompareAndSwap(nil, &err)
	d.frozen.Store(true)
	if freezeWAL {
		d.walFrozen.Store(true)
	}
	if first {
		close(d.failedCh)
		d.log.Error().Err(cause).Msg("strata: database failed; reopen it to continue")
	}
}

// StopAccepting makes every later Enter fail with ErrClosed. Operations
// already admitted continue.
func (d *DB) StopAccepting() { d.state.CompareAndSwap(stateOpen, stateClosing) }

// Accepting reports whether Enter would admit an operation.
func (d *DB) Accepting() bool { return d.Err() == nil }

// WaitIdle waits until no admitted operation is in flight, or ctx ends; it
// then returns ctx's error as it is.
func (d *DB) WaitIdle(ctx context.Context) error {
	wait := 10 * time.Microsecond
	for d.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Millisecond)
	}
	return nil
}

// Close stops accepting operations, waits for those in flight, and closes
// Pebble. It is idempotent: later calls return the first call's result.
// The caller syncs whatever it must before calling Close.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		d.StopAccepting()
		_ = d.WaitIdle(context.Background())
		d.closeSyncMark()
		d.closeErr = d.closePebble()
	})
	return d.closeErr
}

// failedCloseTimeout bounds Pebble's Close after a storage failure: a commit
// pipeline broken by a WAL error can leave Close waiting forever.
const failedCloseTimeout = 5 * time.Second

func (d *DB) closePebble() error {
	d.state.Store(stateClosed)
	d.closePointIters()
	if f := d.Failed(); f != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer d.release()                // not before Pebble let go of the directory
			defer func() { _ = recover() }() // Close may panic on a broken pipeline
			_ = d.pdb.Close()
		}()
		select {
		case <-done:
		case <-time.After(failedCloseTimeout):
			d.log.Error().Msg("strata: Pebble did not close after the failure; its files stay open until the process exits")
		}
		return f
	}
	err := d.mapError(d.pdb.Close())
	if err == nil && d.closeFlushed {
		d.removeRecycledWALs() // before another process may open the directory
	}
	return errors.Join(err, d.release())
}

// release lets go of the directory's lock, and of what a closed store
// still references: Pebble's DB keeps its memtables (a large batch among
// them), and a store on a MemFS keeps its files through the FS, for as long
// as the closed DB is referenced. Call it once Pebble has closed; no
// operation reaches Pebble after Close (they are refused by Enter).
func (d *DB) release() error {
	err := d.lock.Close()
	d.pdb, d.lock, d.overlay, d.marks.fs = nil, nil, nil, nil
	return err
}

// StorageCorruptionError is Pebble failing to read back its own bytes: a
// block whose checksum does not match, a table that does not parse. It
// matches serr.ErrCorruption and unwraps to Pebble's error. It is told
// apart from a Strata record that does not decode (also ErrCorruption)
// because the damage is to a whole block, which holds many records: it is
// a failure to read, and which record is damaged is not knowable.
type StorageCorruptionError struct{ err error }

func (e *StorageCorruptionError) Error() string {
	return serr.ErrCorruption.Error() + ": " + e.err.Error()
}

// Is reports whether target is serr.ErrCorruption.
func (e *StorageCorruptionError) Is(target error) bool { return target == serr.ErrCorruption }

// Unwrap returns Pebble's error.
func (e *StorageCorruptionError) Unwrap() error { return e.err }

// IsStorageCorruption reports whether err is, or wraps, a
// *StorageCorruptionError.
func IsStorageCorruption(err error) bool {
	var sc *StorageCorruptionError
	return errors.As(err, &sc)
}

// mapError turns a Pebble error into one matching Strata's sentinels.
func (d *DB) mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pebble.ErrNotFound):
		return serr.ErrNotFound
	case pebble.IsCorruptionError(err):
		return &StorageCorruptionError{err: err}
	case errors.Is(err, pebble.ErrClosed):
		return serr.ErrClosed
	}
	if f := d.Failed(); f != nil {
		return fmt.Errorf("%w (%v)", f, err)
	}
	return fmt.Errorf("strata: storage: %w", err)
}

// Get returns a copy of the value stored under exactly key.
func (d *DB) Get(key []byte) ([]byte, error) {
	var out []byte
	err := d.View(key, func(v []byte) error {
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// View calls fn with the value of key, which is Pebble's: valid only
// during the call (copy what must outlive it). A missing key returns an
// error matching ErrNotFound without calling fn; fn's error is returned.
func (d *DB) View(key []byte, fn func(v []byte) error) (err error) {
	v, closer, err := d.pdb.Get(key)
	if err != nil {
		return d.mapError(err)
	}
	defer func() {
		if cerr := d.mapError(closer.Close()); err == nil {
			err = cerr
		}
	}()
	return fn(v)
}

// SyncBarrier makes every write applied before it durable: it applies a
// synced batch holding the next sync mark (see syncmark.go) and waits for
// its fsync. A failure marks the store failed.
func (d *DB) SyncBarrier() error {
	if err := d.Failed(); err != nil {
		return err // the WAL is broken; a barrier cannot make anything durable
	}
	d.marksMu.Lock()
	defer d.marksMu.Unlock()
	if err := d.applySyncBarrier(); err != nil {
		return err
	}
	d.recordSyncMark(false)
	return nil
}

// FlushMemtable flushes the memtable to an sstable and waits for it, or
// for the store's failure: a flush that fails fails the store, and Pebble
// would retry it until it is closed.
func (d *DB) FlushMemtable() error { return d.flushOrFail() }

func (d *DB) flushOrFail() error {
	flushed, err := d.pdb.AsyncFlush()
	if err != nil {
		return cmp.Or(d.Failed(), d.mapError(err))
	}
	select {
	case <-flushed:
	case <-d.failedCh:
	}
	return d.Failed()
}

// Metrics returns Pebble's metrics.
func (d *DB) Metrics() *pebble.Metrics { return d.pdb.Metrics() }

// BackgroundErrors returns the number of errors Pebble's background work
// (flushes, compactions) has reported since Open. Pebble retries that work;
// the errors reach no caller, only the log and this count (but a failed
// flush, and a compaction that cannot write its table, fail the store).
func (d *DB) BackgroundErrors() int64 { return d.bgErrors.Load() }

// CorruptionEvents returns the number of times since Open that Pebble found
// damaged bytes in a file it read (a block checksum mismatch, say).
func (d *DB) CorruptionEvents() int64 { return d.corruption.Load() }

// onFlushEnd notes the error of a flush that failed, which Pebble reports
// next as a background error (a flush that wrote no table also ends with an
// error here, but is no failure, and no background error follows it).
func (d *DB) onFlushEnd(info pebble.FlushInfo) {
	if err := info.Err; err != nil {
		d.flushErr.Store(&err)
	}
}

// onBackgroundError counts and logs an error of Pebble's background work,
// and fails the store if it is a flush's. Pebble would retry the flush, at
// once and for as long as it fails (a full disk, a device error), while
// commits fill the memtables and then stall inside Pebble, deaf to their
// contexts; a failed store refuses them instead. The WAL is not frozen:
// when the fault is confined to tables, what Pebble still holds for
// commits acknowledged before the failure reaches it. Nor does the flush
// Close makes after its last sync fail the store (see flushForClose). (A
// compaction that cannot write its tables has failed the store already,
// through the fence: see compactionFailed. One that fails to read its
// input does not fail it: Pebble reports the damage, and the reads that
// meet it fail.)
func (d *DB) onBackgroundError(err error) {
	// (Pebble passes the same error value to both; the text is compared
	// too, for an error type that == cannot compare.)
	if p := d.flushErr.Load(); p != nil && (errors.Is(err, *p) || err.Error() == (*p).Error()) {
		d.flushErr.CompareAndSwap(p, nil)
		d.backgroundFailed(fmt.Errorf("flush: %w", err))
	}
	n := d.bgErrors.Add(1)
	select {
	case d.bgSignal <- struct{}{}:
	default:
	}
	// Pebble retries a failing flush in a tight loop (tens of thousands of
	// events per second on a full disk): log at most one line per second.
	now := time.Now().UnixNano()
	last := d.lastBgLog.Load()
	if now-last >= int64(time.Second) && d.lastBgLog.CompareAndSwap(last, now) {
		d.log.Error().Err(err).Int64("total", n).Msg("strata: storage background error")
	}
}

// backgroundFailed fails the store for cause, the failure of a flush or of
// a compaction's output, unless Close has synced everything and flushes
// the memtable last: then nothing is lost and Close need not fail, but the
// fence must keep the disk as it is and let a flush Pebble retries succeed
// in memory, or Close would wait on it for good (see flushForClose).
func (d *DB) backgroundFailed(cause error) {
	if d.closeFlush.Load() {
		d.frozen.Store(true)
		return
	}
	d.fail(cause)
}

// compactionFailed fails the store for cause, an error creating, writing,
// syncing or closing a compaction's table (a full disk, a device error).
// Pebble would retry the compaction for as long as it fails while flushes
// add tables to level 0, until it stalls every write, with commits blocked
// inside it, deaf to their contexts, and Close waiting for them. A failed
// store admits no commit; a commit already stalled when the failure is
// recorded goes on once a compaction, written to the overlay from then on
// while writes stall (see fence.go), has made room.
func (d *DB) compactionFailed(cause error) {
	d.backgroundFailed(fmt.Errorf("compaction: %w", cause))
}

func (d *DB) onCorruption(info pebble.DataCorruptionInfo) {
	d.corruption.Add(1)
	d.log.Error().Str("path", info.Path).Err(info.Details).Msg("strata: data corruption detected")
}

// pebbleLogger routes Pebble's log lines to zerolog and turns Fatalf into a
// recorded failure instead of os.Exit.
type pebbleLogger struct{ d *DB }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.d.log.Debug().Msgf(format, args...)
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.d.log.Error().Msgf(format, args...)
}

// Fatalf records the failure. Pebble calls it on the committing goroutine
// for WAL failures, so Apply sees the failure before it returns. Pebble
// formats its errors with %s or %v, so the error arguments are kept as
// the failure's causes: errors.Is finds an ENOSPC behind it, say.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	f := &fatalError{msg: fmt.Sprintf("pebble: "+format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.causes = append(f.causes, err)
		}
	}
	l.d.Fail(f)
}

// fatalError is a failure Pebble reported through Logger.Fatalf: its
// message, and the errors among its arguments.
type fatalError struct {
	msg    string
	causes []error
}

func (e *fatalError) Error() string   { return e.msg }
func (e *fatalError) Unwrap() []error { return e.causes }
