// Package events holds the byte formats and the checks of Strata's per-run
// event log: the SHA-256 hash chain, the stored event and head records, and
// the verifier that walks a chain.
//
// The package is pure: it never touches storage. The engine (package strata)
// validates an event with ValidateType and ValidatePayload, encodes its payload
// with value.Encode, computes its hash with ComputeHash and stores
// AppendRecord's bytes under the event key and AppendHead's bytes under the
// run's head key, in the same transaction. Verification reads them back and
// feeds them to a Verifier.
//
// docs/events-format.md describes every byte, with a golden vector, precisely
// enough for another implementation to verify a chain.
//
// # The hash chain (hash format version 1)
//
// Each event's hash is SHA-256 over a length-prefixed, big-endian encoding of
// the domain tag "strata.event", the hash format version, the run id, the
// sequence, the type, the timestamp, the canonical payload encoding and the
// previous event's hash (32 zero bytes for sequence 0); see ComputeHash. The
// payload encoding is value's canonical encoding (object keys sorted, one
// encoding per number), so an event hashes identically in any process and on
// any machine.
//
// # Records
//
// An event record holds what the key does not: the timestamp, the previous
// hash, the hash, the type and the payload (see AppendRecord). The sequence
// and run live in the event key. A head record, one per run and overwritten by
// every append, holds the log's length and the hash of its last event (see
// AppendHead); it is what lets verification notice a deleted tail.
//
// # Verification and its limit
//
// A Verifier checks, in key order, that sequences are contiguous from 0, that
// each record decodes, that each event's stored previous hash is its
// predecessor's stored hash, and that each stored hash is the recomputed one;
// then that the head agrees with the last event, and finally that an Anchor,
// if given, matches. The first fault wins and is reported with its sequence
// and Reason.
//
// Whoever can write the database can also truncate the tail together with
// the head, or rewrite the tail and recompute every hash after it: neither can
// be detected from inside the database. An Anchor (run, sequence, hash) kept
// outside the database detects both: verify against it.
package events
