package strata

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rs/zerolog"
	"github.com/strata-db/strata/durability"
	"github.com/strata-db/strata/keyenc"
	"github.com/strata-db/strata/pebbleadapter"
)

// DurabilityMode says when a commit returns relative to its fsync. See
// docs/durability.md for exactly what each mode keeps after a crash.
type DurabilityMode = durability.Mode

// The durability modes. The zero value is DurabilityBatched.
const (
	// DurabilityBatched: a commit returns once its WAL record is written; a
	// background syncer fsyncs every SyncInterval or MaxPendingCommits
	// commits. A crash keeps everything at or below Database.DurableVersion.
	DurabilityBatched = durability.Batched
	// DurabilityStrict: a commit returns (and becomes visible) only after its
	// WAL record is fsynced. Concurrent commits share fsyncs.
	DurabilityStrict = durability.Strict
	// DurabilityNone: Strata does not sync for a commit. The WAL is synced by
	// Flush, Shutdown and Close, and by the few writes that must be durable
	// at once whatever the mode (see DurableVersion in docs/durability.md,
	// "How it works"), which make the commits before them durable too.
	// A crash may lose an acknowledged suffix, never more.
	DurabilityNone = durability.None
)

// PersistenceMode says whether a database has files.
type PersistenceMode uint8

const (
	// PersistenceDisk: the database lives in a directory of its filesystem.
	PersistenceDisk PersistenceMode = iota
	// PersistenceEphemeral: the database lives in memory and vanishes on
	// Close. Its durability mode is reported as None.
	PersistenceEphemeral
)

// String returns "disk" or "ephemeral".
func (p PersistenceMode) String() string {
	switch p {
	case PersistenceEphemeral:
		return "ephemeral"
	case PersistenceDisk:
		return "disk"
	}
	return fmt.Sprintf("persistence(%d)", uint8(p))
}

// FS is the filesystem interface a database runs on (Pebble's vfs.FS). Tests
// pass vfs.NewMem(), vfs.NewCrashableMem() or an errorfs wrapper.
type FS = pebbleadapter.FS

// Limits.
const (
	// MaxKeySize is the largest user key, in bytes. Empty keys are invalid.
	MaxKeySize = keyenc.MaxUserKeyLen
	// MaxValueSize is the largest stored value payload, in bytes.
	MaxValueSize = 16 << 20
)

// Defaults.
const (
	DefaultSyncInterval      = durability.DefaultInterval
	DefaultMaxPendingCommits = durability.DefaultMaxPending
	DefaultMemTableSize      = 64 << 20
	DefaultCacheSize         = 64 << 20
)

// Options configure a Database. The zero value with a Path is a valid,
// Batched, on-disk configuration; every field's default is given below.
type Options struct {
	// Path is the database directory. It is created if missing. Required
	// unless Ephemeral is set; with Ephemeral it names the directory inside
	// the in-memory filesystem and may be empty.
	Path string

	// Ephemeral keeps the database in memory only: no files, nothing
	// survives Close. Durability is ignored (reported as None). The default
	// is false.
	Ephemeral bool

	// FS is the filesystem to run on, for tests and fault injection. It
	// cannot be combined with Ephemeral. The default is the real disk.
	FS FS

	// Durability is the durability mode. The default is DurabilityBatched.
	Durability DurabilityMode

	// SyncInterval is the longest time between background syncs in Batched
	// mode. In Strict mode, where commits sync themselves, a background
	// barrier once per SyncInterval while commits arrive records the store's
	// progress (a sync mark, see docs/durability.md). The default is 100ms;
	// a set value must be at least MinSyncInterval (1ms). The syncer wakes
	// once per interval while commits arrive; at the first tick that finds
	// nothing new to sync it stops its timer until the next commit, so an
	// idle database costs no wake-ups (a commit that restarts it is synced
	// an interval later, as with a running timer).
	SyncInterval time.Duration

	// MaxPendingCommits is the number of unsynced commits that triggers a
	// background sync before SyncInterval in Batched mode. The default is
	// 1000.
	MaxPendingCommits int

	// MemTableSize is Pebble's memtable size in bytes. Larger memtables
	// avoid write stalls under sustained inserts. The default is 64 MiB; it
	// must be at least MinMemTableSize (64 KiB) and below 4 GiB - 1 byte
	// (math.MaxUint32, Pebble's bound).
	MemTableSize uint64

	// CacheSize is the block cache size in bytes. The default is 64 MiB.
	// It also sizes the index of newest versions that serves point reads:
	// an entry per 256 bytes of CacheSize (1,024 to 262,144 entries), their
	// keys within 64 bytes per entry on average (longer keys make it hold
	// fewer entries), and records up to half of CacheSize (at most 32 MiB),
	// which take about 1.3 times CacheSize of Go heap, up to about 85 MB,
	// whatever the keys' length.
	CacheSize int64

	// Logger receives Strata's and Pebble's log lines. The default is
	// silent (zerolog.Nop()).
	Logger *zerolog.Logger
}

// MinSyncInterval is the smallest SyncInterval Options accept. A WAL fsync
// takes about 0.1 ms or more, so a shorter interval syncs no more often,
// while the syncer, which wakes once per interval while commits arrive,
// would keep a core busy; a commit that must not wait for the next sync
// wants DurabilityStrict.
const MinSyncInterval = time.Millisecond

// maxMemTableSize is Pebble's bound on the memtable size (exclusive):
// 4 GiB - 1 byte.
const maxMemTableSize = math.MaxUint32

// MinMemTableSize is the smallest memtable size Options accept. (Pebble
// itself fails, with a panic, below about 2 KiB, where an empty memtable's
// skiplist heads and half the size no longer fit; the floor leaves room.)
const MinMemTableSize = 64 << 10

// Validate reports a configuration error, matching ErrInvalidOptions.
func (o *Options) Validate() error {
	var errs []error
	switch {
	case !o.Ephemeral && o.Path == "":
		errs = append(errs, errors.New("a path is required unless Ephemeral is set"))
	case o.Ephemeral && o.FS != nil:
		errs = append(errs, errors.New("an FS cannot be combined with Ephemeral"))
	}
	if !o.Durability.Valid() {
		errs = append(errs, fmt.Errorf("unknown durability mode %d", o.Durability))
	}
	if o.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("negative SyncInterval %v", o.SyncInterval))
	} else if o.SyncInterval != 0 && o.SyncInterval < MinSyncInterval {
		errs = append(errs, fmt.Errorf("SyncInterval %v is below MinSyncInterval (%v)", o.SyncInterval, MinSyncInterval))
	}
	if o.MaxPendingCommits < 0 {
		errs = append(errs, fmt.Errorf("negative MaxPendingCommits %d", o.MaxPendingCommits))
	}
	if o.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("negative CacheSize %d", o.CacheSize))
	}
	if o.MemTableSize >= maxMemTableSize {
		errs = append(errs, fmt.Errorf("MemTableSize %d is not below %d (Pebble's limit)", o.MemTableSize, uint64(maxMemTableSize)))
	}
	if o.MemTableSize != 0 && o.MemTableSize < MinMemTableSize {
		errs = append(errs, fmt.Errorf("MemTableSize %d is below MinMemTableSize (%d)", o.MemTableSize, MinMemTableSize))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return nil
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.MaxPendingCommits == 0 {
		o.MaxPendingCommits = DefaultMaxPendingCommits
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
	if o.Ephemeral {
		o.Durability = DurabilityNone
	}
	return o
}
