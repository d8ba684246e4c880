package mvcc

// SetVersionBlock changes how far the last-version record reserves ahead,
// and reserves that far from the last version (instead of the block Open
// reserved), so that tests can cross reservations in a few commits.
func (s *Store) SetVersionBlock(n uint64) error {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	s.block = n
	return s.storeBound(s.last + n)
}

// RaiseTo is raiseTo, for the stress tests' own version marks.
var RaiseTo = raiseTo
