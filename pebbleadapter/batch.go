package pebbleadapter

import (
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Batch is a set of writes applied atomically.
type Batch struct {
	d       *DB
	b       *pebble.Batch
	pending bool // applied with a sync whose wait is still outstanding
}

// batchPool recycles Batch wrappers (Pebble pools its own batches).
var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// NewBatch returns an empty batch. Close releases it; a closed batch must
// not be used again.
func (d *DB) NewBatch() *Batch {
	b := batchPool.Get().(*Batch)
	b.d, b.b = d, d.pdb.NewBatch()
	return b
}

// DeferredSet is a write reserved in a batch by SetDeferred: fill Key and
// Value, then call Finish.
type DeferredSet struct {
	Key, Value []byte
	op         *pebble.DeferredBatchOp
}

// Finish completes the write.
func (d DeferredSet) Finish() { _ = d.op.Finish() }

// SetDeferred reserves room for a key and a value of the given lengths and
// returns the two slices to fill in; this saves a copy when keys are encoded
// straight into the batch.
func (b *Batch) SetDeferred(keyLen, valueLen int) DeferredSet {
	op := b.b.SetDeferred(keyLen, valueLen)
	return DeferredSet{Key: op.Key, Value: op.Value, op: op}
}

// Set adds a write of value under key.
func (b *Batch) Set(key, value []byte) { _ = b.b.Set(key, value, nil) }

// Len returns the size of the batch's encoded contents in bytes.
func (b *Batch) Len() int { return b.b.Len() }

// Apply commits the batch: it is written to the WAL and becomes readable in
// Pebble before Apply returns. With sync, Apply does not wait for the fsync:
// the caller must call SyncWait, outside its own locks, so that concurrent
// synced commits share fsyncs (group commit).
//
// A write failure marks the store failed and returns an error matching
// ErrFailed; it is never reported as success.
func (b *Batch) Apply(sync bool) (err error) {
	// After a failure Pebble's commit pipeline is broken: writing to it again
	// can panic or hang, and a write that reached the WAL would come back
	// after a reopen although it was refused. Refuse before touching it.
	if err := b.d.Failed(); err != nil {
		return err
	}
	defer func() {
		// Pebble panics on the committing goroutine when an earlier,
		// unsynced WAL write failed (commitWrite). The store fence keeps WAL
		// errors from Pebble; should a panic come all the same, it becomes
		// a failure.
		if r := recover(); r != nil {
			b.pending = false
			b.d.Fail(fmt.Errorf("apply: pebble panicked: %v", r))
			err = b.d.Failed()
		}
	}()
	if sync {
		err = b.d.pdb.ApplyNoSyncWait(b.b, pebble.Sync)
	} else {
		err = b.d.pdb.Apply(b.b, pebble.NoSync)
	}
	b.pending = sync && err == nil
	if err != nil {
		b.d.Fail(fmt.Errorf("apply: %w", err))
	}
	// The store fence records a WAL failure and tells Pebble all is well,
	// and Pebble reports some failures through Logger.Fatalf and then
	// returns nil: check for a recorded failure.
	return b.d.Failed()
}

// SyncWait waits for the fsync of a batch applied with sync. It returns nil
// at once for a batch applied without sync.
func (b *Batch) SyncWait() error {
	if !b.pending {
		return b.d.Failed()
	}
	b.pending = false
	if err := b.b.SyncWait(); err != nil {
		b.d.Fail(fmt.Errorf("WAL sync: %w", err))
	}
	return b.d.Failed()
}

// Close releases the batch. A batch applied with sync must have been waited
// for first; Close does that wait itself if it was not.
func (b *Batch) Close() {
	if b.pending {
		_ = b.SyncWait()
	}
	_ = b.b.Close()
	*b = Batch{}
	batchPool.Put(b)
}

// Delete adds a point deletion of key.
func (b *Batch) Delete(key []byte) { _ = b.b.Delete(key, nil) }
