package strata

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// RetryConfig says how Transaction retries a transaction that failed with a
// conflict. Other errors are never retried.
type RetryConfig struct {
	// MaxRetries is the number of retries after the first attempt. The
	// default is 5.
	MaxRetries int
	// BaseDelay is the delay before the first retry; each retry doubles it,
	// up to MaxDelay, and waits a random duration up to it (full jitter).
	// The default is 10ms.
	BaseDelay time.Duration
	// MaxDelay caps the delay. The default is 200ms.
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
// and jitter. Zero fields take their defaults.
func WithRetry(c RetryConfig) TxnOption {
	return func(t *txnConfig) { r := c.withDefaults(); t.retry = &r }
}

// WithTimeout bounds the transaction, retries included: after d, every
// operation fails and the commit is refused with context.DeadlineExceeded.
func WithTimeout(d time.Duration) TxnOption {
	return func(t *txnConfig) { t.timeout = d }
}

// Transaction runs fn in a transaction on run and commits it if fn returns
// nil; if fn returns an error, the transaction is discarded and the error
// returned. See Txn for the isolation it gives.
func (db *Database) Transaction(ctx context.Context, run RunID, fn func(*Txn) error, opts ...TxnOption) error {
	_, err := db.TransactionWithVersion(ctx, run, fn, opts...)
	return err
}

// TransactionWithVersion is Transaction, also returning the commit version
// (0 for a transaction that wrote nothing).
func (db *Database) TransactionWithVersion(ctx context.Context, run RunID, fn func(*Txn) error, opts ...TxnOption) (uint64, error) {
	if len(opts) == 0 {
		return db.runOnce(ctx, run, fn, txnConfig{}) // no retry, no timeout
	}
	return db.transaction(ctx, run, fn, applyTxnOptions(opts))
}

// applyTxnOptions returns the configuration opts set. (A configuration
// whose address goes to an option is allocated: Transaction without options
// spares it.)
func applyTxnOptions(opts []TxnOption) txnConfig {
	var cfg txnConfig
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// transaction runs fn with retries and a timeout as cfg says.
func (db *Database) transaction(ctx context.Context, run RunID, fn func(*Txn) error, cfg txnConfig) (uint64, error) {
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
		v, err := db.runOnce(ctx, run, fn, cfg)
		if err == nil || !errors.Is(err, ErrConflict) || attempt >= retries {
			return v, err
		}
		if werr := sleepCtx(ctx, backoff(*cfg.retry, attempt)); werr != nil {
			return 0, errors.Join(err, werr)
		}
	}
}

func (db *Database) runOnce(ctx context.Context, run RunID, fn func(*Txn) error, cfg txnConfig) (uint64, error) {
	t, err := db.begin(ctx, run, cfg)
	if err != nil {
		return 0, err
	}
	defer t.End()
	if err := fn(t); err != nil {
		return 0, err
	}
	return t.Commit()
}

// backoff returns the jittered delay before retry number attempt+1.
func backoff(c RetryConfig, attempt int) time.Duration {
	d := c.BaseDelay << min(attempt, 30)
	if d <= 0 || d > c.MaxDelay {
		d = c.MaxDelay
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// readTxn runs fn in a transaction on run at the current version, as the
// direct reads do: if fn's reads meet version GC (the snapshot fell below
// the run's horizon while fn ran), it runs fn again at the new version;
// other errors, conflicts included, are returned.
func (db *Database) readTxn(ctx context.Context, run RunID, fn func(*Txn) error) error {
	for {
		err := db.Transaction(ctx, run, fn)
		if !trimmedSnapshot(err) {
			return err
		}
	}
}
