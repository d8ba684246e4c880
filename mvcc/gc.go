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
// with prefix (nil: every key of the tag). For each key, keep is called
// with its versions one at a time, newest first (i = 0 for the newest),
// until it returns false or the versions end: the version it refuses and
// every older one are removed. The newest version always stays, whatever
// keep says of it. keep may hold state across the calls for one key and
// reset it at i = 0. Prune holds at most one chunk of removals in memory,
// however many versions a key has. The versions it removes are not read
// (a damaged one goes with the rest); those keep sees are decoded, and one
// that does not decode fails the pass.
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
func (s *Store) Prune(run keyenc.RunID, tag keyenc.Tag, prefix []byte, keep func(key []byte, i int, v VersionMeta) bool, publish func(horizon uint64) error) (PruneStats, error) {
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
		bare    []byte   // bare key of the current key
		userKey []byte   // its user key
		i       int      // index of the current version in its key, newest first
		keeping bool     // no version of the current key was refused yet
		kept    uint64   // the oldest version of the current key kept so far
		pending [][]byte // stored keys to remove
		horizon uint64   // of pending
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
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if p := k[:keyenc.Split(k)]; !bytes.Equal(p, bare) {
			d, derr := keyenc.DecodeDataKey(k)
			if derr != nil {
				err = derr
				break
			}
			bare = append(bare[:0], p...)
			userKey = append(userKey[:0], d.UserKey...)
			i, keeping = 0, true
			st.Keys++
		}
		if keeping {
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
			v := VersionMeta{Version: rec.Version, Timestamp: rec.Timestamp, Kind: rec.Kind}
			if keeping = keep(userKey, i, v) || i == 0; keeping {
				kept = v.Version
			}
		}
		if !keeping {
			// Reads of the key below kept may change from here on.
			horizon = max(horizon, kept)
			st.Horizon = max(st.Horizon, kept)
			pending = append(pending, append([]byte(nil), k...))
			if len(pending) >= pruneChunk {
				if err = flush(); err != nil {
					break
				}
			}
		}
		i++
	}
	if cerr := closeIter(it); err == nil {
		err = cerr
	}
	if err == nil {
		err = flush()
	}
	return st, err
}
