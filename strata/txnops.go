package strata

import "github.com/strata-db/strata/events"

// TransactionOps is what a transaction offers on the run it belongs to: the
// operations of the original engine's TransactionOps trait, over the KV
// store, the event log and state cells, so that one commit can change
// several primitives atomically.
//
// Reads return versioned values: KV reads a Versioned (value, commit
// version, commit time), event reads an Event (sequence, hashes, timestamp,
// commit version), state reads a State (value, counter, commit version,
// commit time). Writes are buffered until commit and validated then (see
// Txn); the writes that have a version of their own before the commit
// return it: an event append its sequence, a state write the cell's new
// counter. The commit version of every write is what Commit returns.
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

	// AppendEvent appends an event and returns its sequence.
	AppendEvent(typ string, payload Value) (uint64, error)
	// AppendEvents appends a batch of events, contiguous and all or
	// nothing, and returns the first sequence.
	AppendEvents(batch []EventData) (uint64, error)
	// Event returns the event at sequence seq, or ErrNotFound.
	Event(seq uint64) (Event, error)
	// EventRange returns the events with sequences in [start, end).
	EventRange(start, end uint64) ([]Event, error)
	// EventLen returns the number of events.
	EventLen() (uint64, error)
	// EventHead returns the log's length and last hash.
	EventHead() (events.Head, error)

	// StateRead returns a state cell, or ErrNotFound.
	StateRead(name string) (State, error)
	// StateInit creates a cell and returns its counter, or ErrStateExists.
	StateInit(name string, v Value) (uint64, error)
	// StateSet writes a cell and returns its new counter.
	StateSet(name string, v Value) (uint64, error)
	// StateCAS writes a cell if its counter is expected and returns the new
	// counter.
	StateCAS(name string, expected uint64, v Value) (uint64, error)
	// StateDelete deletes a cell and reports whether it existed.
	StateDelete(name string) (bool, error)
	// StateList returns the names of the live cells starting with prefix.
	StateList(prefix string) ([]string, error)
}

var _ TransactionOps = (*Txn)(nil)
