package strata

// writeSet is a transaction's buffered writes, keyed by tagged key (a tag
// byte followed by the user key), in the order they were first written.
// Most transactions write a few keys: up to writeSetScan of them are found
// by a scan of the list, which beats hashing the key; a larger set gets a
// map from key to position.
type writeSet struct {
	list    []writeEntry
	index   map[string]int // valid while indexed; kept for reuse
	indexed bool           // the set outgrew writeSetScan
}

type writeEntry struct {
	key string
	w   txnWrite
}

// writeSetScan is the largest set searched by a scan of the list.
const writeSetScan = 8

// find returns the position of tk, or -1.
func (s *writeSet) find(tk []byte) int {
	if s.indexed {
		if i, ok := s.index[string(tk)]; ok {
			return i
		}
		return -1
	}
	for i := range s.list {
		if s.list[i].key == string(tk) {
			return i
		}
	}
	return -1
}

// get returns the write buffered for tk.
func (s *writeSet) get(tk []byte) (txnWrite, bool) {
	if i := s.find(tk); i >= 0 {
		return s.list[i].w, true
	}
	return txnWrite{}, false
}

// has reports whether a write is buffered for tk.
func (s *writeSet) has(tk []byte) bool { return s.find(tk) >= 0 }

// replace sets the write at position i (from find).
func (s *writeSet) replace(i int, w txnWrite) { s.list[i].w = w }

// add appends a write for a key the set does not hold. key must not change
// while it is in the set.
func (s *writeSet) add(key string, w txnWrite) {
	s.list = append(s.list, writeEntry{key: key, w: w})
	switch n := len(s.list); {
	case s.indexed:
		s.index[key] = n - 1
	case n > writeSetScan:
		if s.index == nil {
			s.index = make(map[string]int, 2*n)
		}
		for i := range s.list {
			s.index[s.list[i].key] = i
		}
		s.indexed = true
	}
}

// len returns the number of keys written.
func (s *writeSet) len() int { return len(s.list) }

// reset empties the set, keeping its storage for reuse (the caller drops
// sets that grew large).
func (s *writeSet) reset() {
	clear(s.list)
	s.list = s.list[:0]
	clear(s.index)
	s.indexed = false
}
