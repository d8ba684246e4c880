package mvcc

import (
	"bytes"

	"github.com/strata-db/strata/keyenc"
)

// VersionMeta describes one stored version of a key, for a pruning decision.
type VersionMeta struct {
	Version   uint64
	Timestamp int64
	Kind      keyenc.Kind
}

// PruneStats counts what a Prune pass did.
type PruneStats struct {
	Keys    int64 // keys examined
	Removed int64 // versions removed
	// Horizon is the highest "oldest kept version" among the keys that lost
	// versions (0 if none did): a read at a version >= Horizon sees exactly
	// what it saw before the pass.
	Horizon uint64
}

// pruneChunk is how many removals Prune collects before it publishes their
// horizon and applies them.
const pruneChunk = 1024

// Prune removes old versions of the keys of (run, tag) whose user key starts
// with prefix (nil: every key of the tag). For each key, keep
// gets the key's versions, newest first, and returns how many of the newest
// to keep (at least 1: the newest version always stays); the older ones are
// removed.
//
// Removing the versions of key k that are older than its oldest kept version
// w changes reads of k at versions below w, and only those. Before applying
// a chunk of removals Prune calls publish with the highest such w of the
// chunk (nondecreasing across calls); a reader that checks the published
// horizon after its read knows whether its version may have been affected.
// If publish fails, nothing more is removed.
//
// Removals are plain Pebble deletions with no commit version and no sync: a
// crash can undo some of them, which only brings back old versions.
func (s *Store) Prune(run keyenc.RunID, tag keyenc.Tag, prefix []byte, keep func(key []byte, versions []VersionMeta) int, publish func(horizon uint64) error) (PruneStats, error) {
	var st PruneStats
	if err := s.Err(); err != nil {
		return st, err
	}
	lower, upper := keyenc.PrefixBounds(run, tag, prefix)
	it, err := s.db.NewIter(lower, upper)
	if err != nil {
		return st, err
	}
	var (
		bare     []byte        // bare key of the current key
		userKey  []byte        // its user key
		versions []VersionMeta // its versions, newest first
		rawKeys  [][]byte      // their stored keys
		pending  [][]byte      // stored keys to remove
		horizon  uint64        // of pending
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := publish(horizon); err != nil {
			return err
		}
		b := s.db.NewBatch()
		for _, k := range pending {
			b.Delete(k)
		}
		err := b.Apply(false)
		b.Close()
		if err != nil {
			return err
		}
		st.Removed += int64(len(pending))
		pending = pending[:0]
		return nil
	}
	decide := func() error {
		if len(versions) == 0 {
			return nil
		}
		st.Keys++
		n := max(keep(userKey, versions), 1)
		if n < len(versions) {
			pending = append(pending, rawKeys[n:]...)
			horizon = max(horizon, versions[n-1].Version)
			st.Horizon = max(st.Horizon, versions[n-1].Version)
		}
		versions, rawKeys = versions[:0], rawKeys[:0]
		if len(pending) >= pruneChunk {
			return flush()
		}
		return nil
	}
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		p := k[:keyenc.Split(k)]
		if !bytes.Equal(p, bare) {
			if err = decide(); err != nil {
				break
			}
			d, derr := keyenc.DecodeDataKey(k)
			if derr != nil {
				err = derr
				break
			}
			bare = append(bare[:0], p...)
			userKey = append(userKey[:0], d.UserKey...)
		}
		raw, verr := it.Value()
		if verr != nil {
			err = verr
			break
		}
		rec, derr := decodeValue(raw, keyenc.Version(k))
		if derr != nil {
			err = derr
			break
		}
		versions = append(versions, VersionMeta{Version: rec.Version, Timestamp: rec.Timestamp, Kind: rec.Kind})
		rawKeys = append(rawKeys, append([]byte(nil), k...))
	}
	if err == nil {
		err = decide()
	}
	if cerr := closeIter(it); err == nil {
		err = cerr
	}
	if err == nil {
		err = flush()
	}
	return st, err
}
