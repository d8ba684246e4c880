package strata

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryConfig says how Transaction retries a transaction that failed with a
// conflict. Other errors are never retried. Without WithRetry, a
// transaction runs once.
type RetryConfig struct {
	// MaxRetries is the number of retries after the first attempt. Zero
	// means the default, 5.
	MaxRetries int
	// BaseDelay is the delay before the first retry; each retry doubles it,
	// up to MaxDelay, and waits a random duration up to it (full jitter).
	// Zero means the default, 10ms.
	BaseDelay time.Duration
	// MaxDelay caps the delay. Zero means the default, 200ms.
	MaxDelay time.Duration
}

// Retry defaults.
const (
	DefaultMaxRetries = 5
	DefaultBaseDelay  = 10 * time.Millisecond
	DefaultMaxDelay   = 200 * time.Millisecond
)

func (c RetryConfig) withDefaults() RetryConfig {
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	return c
}

// WithRetry retries the transaction on conflicts, with exponential backoff
// and jitter. Zero fields take their defaults; a negative one makes the
// transaction fail with ErrInvalidOptions. It applies to Transaction and
// TransactionWithVersion: Begin refuses it, since the caller of a manual
// transaction runs it again itself.
func WithRetry(c RetryConfig) TxnOption {
	return func(t *txnConfig) { r := c.withDefaults(); t.retry = &r }
}

// WithTimeout bounds the transaction, retries included: after d, every
// operation fails with context.DeadlineExceeded (a long List too, between
// keys), and so does the commit, unless it was applied before d. The
// commit looks at the deadline last as it is sequenced, after its
// validation under the run's lock (it may wait there behind other runs'
// commits): it gets its version only if d has not passed, and its commit
// timestamp is that clock reading. Once applied, it waits for its fsync
// (Strict) and for the commits before it to become visible, which can end
// after d, and then reports success, since it happened. d must be
// positive; otherwise the transaction fails with ErrInvalidOptions.
func WithTimeout(d time.Duration) TxnOption {
	return func(t *txnConfig) { t.timeout, t.timeoutSet = d, true }
}

// validate checks the options' values.
func (c *txnConfig) validate() error {
	switch {
	case c.nilOption:
		return fmt.Errorf("%w: nil TxnOption", ErrInvalidOptions)
	case c.modeSet && !c.mode.Valid():
		return fmt.Errorf("%w: unknown durability mode %d", ErrInvalidOptions, c.mode)
	case c.timeoutSet && c.timeout <= 0:
		return fmt.Errorf("%w: timeout %v is not positive", ErrInvalidOptions, c.timeout)
	case c.retry != nil && (c.retry.MaxRetries < 0 || c.retry.BaseDelay < 0 || c.retry.MaxDelay < 0):
		return fmt.Errorf("%w: negative retry setting %+v", ErrInvalidOptions, *c.retry)
	}
	return nil
}

// Transaction runs fn in a transaction on run and commits it if fn returns
// nil; if fn returns an error, the transaction is discarded and the error
// returned. If fn panics, the transaction is discarded (unless fn committed
// it) and the panic continues. See Txn for the isolation it gives.
func (db *Database) Transaction(ctx context.Context, run RunID, fn func(*Txn) error, opts ...TxnOption) error {
	_, err := db.TransactionWithVersion(ctx, run, fn, opts...)
	return err
}

// TransactionWithVersion is Transaction, also returning the commit version
// (0 for a transaction that wrote nothing).
func (db *Database) TransactionWithVersion(ctx context.Context, run RunID, fn func(*Txn) error, opts ...TxnOption) (uint64, error) {
	if len(opts) == 0 {
		v, _, err := db.runOnce(ctx, run, fn, txnConfig{}) // no retry, no timeout
		return v, err
	}
	return db.transaction(ctx, run, fn, applyTxnOptions(opts))
}

// applyTxnOptions returns the configuration opts set. (A configuration
// whose address goes to an option is allocated: Transaction without options
// spares it.)
func applyTxnOptions(opts []TxnOption) txnConfig {
	var cfg txnConfig
	for _, o := range opts {
		if o == nil {
			cfg.nilOption = true // refused by validate
			continue
		}
		o(&cfg)
	}
	return cfg
}

// transaction runs fn with retries and a timeout as cfg says.
func (db *Database) transaction(ctx context.Context, run RunID, fn func(*Txn) error, cfg txnConfig) (uint64, error) {
	if err := cfg.validate(); err != nil {
		return 0, err
	}
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	retries := 0
	if cfg.retry != nil {
		retries = cfg.retry.MaxRetries
	}
	for attempt := 0; ; attempt++ {
		v, committed, err := db.runOnce(ctx, run, fn, cfg)
		if err == nil || committed || !errors.Is(err, ErrConflict) || attempt >= retries {
			return v, err
		}
		if werr := sleepCtx(ctx, backoff(*cfg.retry, attempt)); werr != nil {
			return 0, errors.Join(err, werr)
		}
	}
}

// runOnce runs one attempt of fn. committed reports whether the attempt's
// transaction committed, which fn may also have done itself: then its
// writes stand whatever fn returned, and the attempt must not run again.
func (db *Database) runOnce(ctx context.Context, run RunID, fn func(*Txn) error, cfg txnConfig) (v uint64, committed bool, err error) {
	if fn == nil {
		return 0, false, fmt.Errorf("%w: nil transaction function", ErrInvalidOptions)
	}
	t, err := db.begin(ctx, run, cfg)
	if err != nil {
		return 0, false, err
	}
	defer t.End()
	ferr := fn(t)
	switch {
	case t.committed: // by fn
		return t.version, true, ferr
	case ferr != nil:
		return 0, false, ferr
	case t.commitErr != nil: // fn's own Commit failed, and fn returned nil
		return 0, false, t.commitErr
	case t.done:
		return 0, false, fmt.Errorf("%w: the function ended the transaction without committing it", ErrTxnDone)
	}
	v, err = t.Commit()
	return v, err == nil, err
}

// backoff returns the jittered delay before retry number attempt+1: a
// uniform draw from [0, min(BaseDelay<<attempt, MaxDelay)]. Any positive
// delays are valid, math.MaxInt64 included, so the doubling is compared
// with MaxDelay before it is done (it cannot overflow) and the draw is
// made in uint64 (MaxInt64+1 fits there).
func backoff(c RetryConfig, attempt int) time.Duration {
	shift := min(attempt, 62)
	d := c.MaxDelay
	if c.BaseDelay <= c.MaxDelay>>shift {
		d = c.BaseDelay << shift
	}
	return time.Duration(rand.Uint64N(uint64(d) + 1))
}

// sleepCtx waits for d, or until ctx ends: it returns ctx's error if ctx
// ended before or while it waited (also when the timer fired first, as a
// zero delay's does), nil otherwise.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctxErr(ctx)
}

// readTxn runs fn in a transaction on run at the current version, for the
// direct reads built on transactions. The transaction's pin keeps version GC
// from removing anything its snapshot reads, so a read never has to start
// again.
func (db *Database) readTxn(ctx context.Context, run RunID, fn func(*Txn) error) error {
	return db.Transaction(ctx, run, fn, directOp)
}
