package strata

// Metrics is a snapshot of a database's counters.
type Metrics struct {
	// CurrentVersion is the visible version (see Database.CurrentVersion).
	CurrentVersion uint64
	// DurableVersion is the highest version known to survive a crash.
	DurableVersion uint64
	// Syncs is the number of WAL sync barriers issued by Flush, the
	// background syncer (in Strict mode, one per SyncInterval while commits
	// arrive, which only records a sync mark: Strict commits sync on their
	// own), Shutdown and Close (not the sync mark barrier Close always
	// writes last).
	Syncs uint64
	// Transactions counts transactions (Begin, Transaction and friends;
	// direct operations are not counted).
	Transactions TxnMetrics
	// Storage describes the Pebble store underneath.
	Storage StorageMetrics
}

// TxnMetrics counts transactions. A transaction that wrote nothing and
// ended with Commit counts as committed; one ended without committing, or
// whose commit failed, as aborted. The counters are not read in one atomic
// step, but every snapshot has Completed() + Active <= Started (the
// difference is transactions between two counters at that instant).
type TxnMetrics struct {
	Active, Started, Committed, Aborted int64
}

// Completed returns Committed + Aborted.
func (m TxnMetrics) Completed() int64 { return m.Committed + m.Aborted }

// CommitRate returns the fraction of started transactions that committed
// (0 when none started).
func (m TxnMetrics) CommitRate() float64 { return ratio(m.Committed, m.Started) }

// AbortRate returns the fraction of started transactions that aborted (0
// when none started).
func (m TxnMetrics) AbortRate() float64 { return ratio(m.Aborted, m.Started) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// StorageMetrics are selected Pebble metrics.
type StorageMetrics struct {
	DiskSpaceUsage   uint64 // the sizes of Pebble's files: tables, WALs (in use, and done with but kept for reuse or deletion), manifest, OPTIONS; not WAL space preallocated past a file's size. The live WALs count at the larger of their size when opened (a reused file) and the bytes written to them
	WALBytesWritten  uint64 // bytes written to the WAL since Open finished, as Pebble counts them (the WAL bytes its flushes took in, plus the live WALs' sizes); what Open replayed is not counted
	WALFiles         int64  // live WAL files
	MemTableSize     uint64 // bytes allocated by memtables
	MemTableCount    int64  // memtables, including the mutable one
	Flushes          int64  // memtable flushes
	Compactions      int64  // compactions
	ReadAmp          int    // read amplification of the LSM
	BlockCacheHits   int64
	BlockCacheMisses int64
	// BackgroundErrors counts errors of Pebble's background work (flushes,
	// compactions) since Open, which Pebble retries. The first failed flush,
	// and the first compaction that cannot write its table, fail the
	// database (ErrFailed, and Storage reads zero from then on); a
	// compaction that fails to read its input reaches no call, only
	// Options.Logger (at most a line a second) and this count.
	BackgroundErrors int64
	// CorruptionEvents counts the times since Open that Pebble found
	// damaged bytes in a file it read (a block checksum mismatch); the read
	// that found them returned ErrCorruption.
	CorruptionEvents int64
	// Detail is Pebble's own multi-line metrics table.
	Detail string
}

// Metrics returns a snapshot of the database's metrics. After Close it
// returns the version and transaction counters; Storage is zero.
func (db *Database) Metrics() Metrics {
	durable := db.dur.Durable()
	m := Metrics{
		CurrentVersion: db.store.Visible(),
		Syncs:          db.dur.Syncs(),
	}
	m.DurableVersion = min(durable, m.CurrentVersion)
	// The counters are read in the reverse of the order a transaction
	// moves them in (Started, Active up; Active down, then its outcome), so
	// that Completed() + Active <= Started holds in every snapshot: each
	// transaction counted is counted once, and was started.
	tm := &m.Transactions
	tm.Committed = db.txnCommitted.Load()
	tm.Aborted = db.txnAborted.Load()
	tm.Active = db.txnActive.Load()
	tm.Started = db.txnStarted.Load()
	if db.adb.Enter() != nil {
		return m
	}
	defer db.leave()
	pm := db.adb.Metrics()
	m.Storage = StorageMetrics{
		// Pebble counts the live WAL at its size when it was opened.
		DiskSpaceUsage:   pm.DiskSpaceUsage() - pm.WAL.PhysicalSize + max(pm.WAL.PhysicalSize, pm.WAL.Size),
		WALBytesWritten:  pm.WAL.BytesWritten - min(db.walBase, pm.WAL.BytesWritten),
		WALFiles:         pm.WAL.Files,
		MemTableSize:     pm.MemTable.Size,
		MemTableCount:    pm.MemTable.Count,
		Flushes:          pm.Flush.Count,
		Compactions:      pm.Compact.Count,
		ReadAmp:          pm.ReadAmp(),
		BlockCacheHits:   pm.BlockCache.Hits,
		BlockCacheMisses: pm.BlockCache.Misses,
		BackgroundErrors: db.adb.BackgroundErrors(),
		CorruptionEvents: db.adb.CorruptionEvents(),
		Detail:           pm.String(),
	}
	return m
}
