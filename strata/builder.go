package strata

import (
	"fmt"
	"os"
	"time"
)

// Builder configures and opens a Database step by step, for callers who
// prefer it to filling in Options:
//
//	db, err := strata.NewBuilder().Path("data").Strict().Open()
type Builder struct {
	opts Options
}

// NewBuilder returns a builder for a Batched, on-disk database.
func NewBuilder() *Builder { return &Builder{} }

// Path sets the database directory.
func (b *Builder) Path(p string) *Builder { b.opts.Path = p; return b }

// Durability sets the durability mode.
func (b *Builder) Durability(m DurabilityMode) *Builder { b.opts.Durability = m; return b }

// NoDurability selects DurabilityNone.
func (b *Builder) NoDurability() *Builder { return b.Durability(DurabilityNone) }

// Buffered selects DurabilityBatched with the default sync interval and
// pending-commit threshold (replacing any set before).
func (b *Builder) Buffered() *Builder { return b.BufferedWith(0, 0) }

// BufferedWith selects DurabilityBatched with the given sync interval and
// pending-commit threshold.
func (b *Builder) BufferedWith(interval time.Duration, maxPending int) *Builder {
	b.opts.SyncInterval, b.opts.MaxPendingCommits = interval, maxPending
	return b.Durability(DurabilityBatched)
}

// Strict selects DurabilityStrict.
func (b *Builder) Strict() *Builder { return b.Durability(DurabilityStrict) }

// Options replaces every setting with opts.
func (b *Builder) Options(opts Options) *Builder { b.opts = opts; return b }

// GetPath returns the configured path.
func (b *Builder) GetPath() string { return b.opts.Path }

// GetDurability returns the configured durability mode.
func (b *Builder) GetDurability() DurabilityMode { return b.opts.Durability }

// Open opens the database.
func (b *Builder) Open() (*Database, error) { return OpenWith(b.opts) }

// OpenTemp opens the database on disk in a new temporary directory (any
// configured Path, FS or Ephemeral setting is ignored). Close removes the
// directory.
func (b *Builder) OpenTemp() (*Database, error) {
	dir, err := os.MkdirTemp("", "strata-*")
	if err != nil {
		return nil, fmt.Errorf("strata: temp dir: %w", err)
	}
	opts := b.opts
	opts.Path, opts.Ephemeral, opts.FS = dir, false, nil
	db, err := OpenWith(opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	db.tempDir = dir
	return db, nil
}
