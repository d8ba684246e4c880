package strata

import (
	"fmt"
	"slices"
	"strings"

	"github.com/strata-db/strata/internal/serr"
	"github.com/strata-db/strata/keyenc"
)

// Errors returned by Strata. Match them with errors.Is: the returned errors
// wrap them with context.
var (
	// ErrClosed: the database was closed or shut down.
	ErrClosed = serr.ErrClosed
	// ErrFailed: the database hit an unrecoverable storage error, in any
	// durability mode: a failed write, sync, create, stat or close of a WAL
	// or MANIFEST file, or a flush or a compaction that failed to write its
	// tables. Every later call fails with it, Close included; reopen the
	// database. Nothing after the failure was acknowledged.
	ErrFailed = serr.ErrFailed
	// ErrLocked: another process or another open Database holds the
	// directory.
	ErrLocked = serr.ErrLocked
	// ErrCorruption: stored bytes failed a checksum or did not decode, or
	// the directory holds a store of another format or a damaged one (see
	// docs/api.md, "Errors").
	ErrCorruption = serr.ErrCorruption
	// ErrNotFound: the key is absent (never written, or deleted); also an
	// event past the end of a log, the anchor of an empty log, and a CAS or
	// transition of a missing state cell.
	ErrNotFound = serr.ErrNotFound
	// ErrInvalidKey: an empty key, or one longer than MaxKeySize; also a
	// list prefix longer than MaxKeySize, a state cell name that is not
	// UTF-8, and a list cursor outside its prefix.
	ErrInvalidKey = serr.ErrInvalidKey
	// ErrInvalidValue: a value larger than MaxValueSize, a NaN or infinite
	// float, invalid UTF-8 in a string, or nesting deeper than
	// value.MaxDepth.
	ErrInvalidValue = serr.ErrInvalidValue
	// ErrInvalidRunID: the nil run id, or a string that is not a UUID.
	ErrInvalidRunID = serr.ErrInvalidRunID
	// ErrInvalidOptions: Options.Validate rejected the configuration, or a
	// call got a bad argument that is not a key, value or run id: a
	// retention policy, a negative limit, a nil or invalid TxnOption, a nil
	// function.
	ErrInvalidOptions = serr.ErrInvalidOptions
	// ErrConflict: a commit lost against a concurrent one, or a CAS (of a
	// key or a state cell) whose expected version did not hold, with or
	// without a concurrent commit. The error is a *ConflictError naming the
	// keys.
	ErrConflict = serr.ErrConflict
)

// ConflictError reports a commit that failed validation. It matches
// ErrConflict with errors.Is.
type ConflictError struct {
	Run RunID
	// Keys are the keys whose check failed, each once, ordered by
	// primitive (KV keys, then the event log's head, named "event-head",
	// then state cell names), then by key. Primitives[i] names the
	// primitive of Keys[i].
	Keys [][]byte
	// Primitives[i] is the primitive Keys[i] belongs to (nil when every key
	// is a KV key).
	Primitives []Primitive
	// Reason says what failed, for example
	// "compare-and-swap expected version 3, found 5".
	Reason string
}

// Error describes the conflict: the run, the keys and the reason.
func (e *ConflictError) Error() string {
	keys := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		keys[i] = fmt.Sprintf("%q", k)
		if i < len(e.Primitives) && e.Primitives[i] != PrimitiveKV {
			keys[i] = fmt.Sprintf("%s %q", e.Primitives[i], k)
		}
	}
	if len(keys) == 0 {
		return fmt.Sprintf("strata: conflict in run %s: %s", e.Run, e.Reason)
	}
	return fmt.Sprintf("strata: conflict in run %s on %s: %s", e.Run, strings.Join(keys, ", "), e.Reason)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Primitive names the kind of data a key belongs to.
type Primitive uint8

// Primitives.
const (
	PrimitiveKV Primitive = iota
	PrimitiveEvent
	PrimitiveState
)

// String returns the primitive's name: "kv", "event log" or "state cell".
func (p Primitive) String() string {
	switch p {
	case PrimitiveKV:
		return "kv"
	case PrimitiveEvent:
		return "event log"
	case PrimitiveState:
		return "state cell"
	}
	return fmt.Sprintf("primitive(%d)", uint8(p))
}

// primitiveOf maps a key tag to the primitive it stores. The event log's
// head record lives under TagRunMeta.
func primitiveOf(tag keyenc.Tag) Primitive {
	switch tag {
	case keyenc.TagEvent, keyenc.TagRunMeta:
		return PrimitiveEvent
	case keyenc.TagState:
		return PrimitiveState
	}
	return PrimitiveKV
}

// describe renders a tagged key for a conflict reason.
func describe(tag keyenc.Tag, key string) string {
	switch tag {
	case keyenc.TagRunMeta:
		return "the event log head"
	case keyenc.TagKV:
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%s %q", primitiveOf(tag), key)
}

// conflicts collects the failed checks of one validation.
type conflicts struct {
	items []conflictItem
}

type conflictItem struct {
	prim   Primitive
	key    string
	reason string
}

func (c *conflicts) add(tag keyenc.Tag, key, reason string) {
	c.items = append(c.items, conflictItem{primitiveOf(tag), key, reason})
}

// err returns the *ConflictError of the collected checks, nil if none
// failed. Keys are ordered by primitive, then key.
func (c *conflicts) err(run RunID) error {
	if len(c.items) == 0 {
		return nil
	}
	slices.SortFunc(c.items, func(a, b conflictItem) int {
		if a.prim != b.prim {
			return int(a.prim) - int(b.prim)
		}
		return strings.Compare(a.key, b.key)
	})
	e := &ConflictError{Run: run, Reason: c.items[0].reason}
	allKV := true
	for i, it := range c.items {
		if i > 0 && it.prim == c.items[i-1].prim && it.key == c.items[i-1].key {
			continue // a key that failed two checks (read and CAS, read and list) is named once
		}
		e.Keys = append(e.Keys, []byte(it.key))
		e.Primitives = append(e.Primitives, it.prim)
		allKV = allKV && it.prim == PrimitiveKV
	}
	if allKV {
		e.Primitives = nil
	}
	return e
}
