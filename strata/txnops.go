package strata

// TransactionOps is what a transaction offers on the run it belongs to:
// the operations the original engine's TransactionOps trait lists. Reads
// return versioned values; writes are buffered until commit and validated
// then (see Txn).
//
// KV operations are the methods themselves. The event log and state cells
// of the next layer join as further methods on the same transaction, so
// that one commit can change several primitives atomically; their keys use
// their own tags in the same key layout (see docs/format.md).
type TransactionOps interface {
	// Get returns the value of key, or ErrNotFound.
	Get(key []byte) (Versioned, error)
	// Put writes v under key.
	Put(key []byte, v Value) error
	// Delete deletes key and reports whether it existed.
	Delete(key []byte) (bool, error)
	// Exists reports whether key has a value.
	Exists(key []byte) (bool, error)
	// List returns the keys starting with prefix, in order.
	List(prefix []byte) ([][]byte, error)
	// CAS writes v under key if the key's committed version is expected
	// when the transaction commits.
	CAS(key []byte, expected uint64, v Value) error
}

var _ TransactionOps = (*Txn)(nil)
