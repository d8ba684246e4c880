package mvcc

// SetVersionBlock changes how far the last-version record reserves ahead,
// so that tests can cross reservations in a few commits.
func (s *Store) SetVersionBlock(n uint64) {
	s.seqMu.Lock()
	s.block = n
	s.seqMu.Unlock()
}
