package harness

// Plan tells a workload what one rep will ask of it, so that it can prepare
// every input before timing starts.
type Plan struct {
	// Rep is the rep's index. Inputs are seeded with it, so every system of
	// a group sees the same keys in the same rep.
	Rep int
	// Goroutines is the number of goroutines calling Op.
	Goroutines int
	// OpsPerGoroutine bounds the operations (warm-up and timed) one goroutine
	// runs in this rep.
	OpsPerGoroutine int
}

// Instance is a store ready for one rep.
type Instance struct {
	// Op runs operation i of goroutine g, for 0 <= g < Plan.Goroutines and
	// 0 <= i < Plan.OpsPerGoroutine. Calls with different g are concurrent.
	Op func(g, i int) error
	// Close ends the rep. A store opened for this rep alone is closed and
	// its directory removed.
	Close func() error
	// Counts, if not nil, returns the transaction attempts and aborts so
	// far; the rep records how much they grew over the timed phase.
	Counts func() TxnCounts
}

// TxnCounts counts transaction attempts, retries included, and the attempts
// that aborted.
type TxnCounts struct {
	Attempts, Aborts int64
}

// Workload is one system's side of a comparison group.
type Workload struct {
	// System names the store: "strata", "pebble" or "badger".
	System string
	// Setting says what is measured, e.g. "Put, DurabilityNone".
	Setting string
	// Goroutines is the number of goroutines running operations.
	Goroutines int
	// Prepare, if not nil, runs once before the group's first rep (to load a
	// store that every rep reads). It is not timed.
	Prepare func() error
	// Start readies the store for one rep. Write workloads open a fresh store
	// in a new temporary directory.
	Start func(Plan) (Instance, error)
	// Cleanup, if not nil, runs once after the group's last rep (or after a
	// failure) and releases what Prepare made.
	Cleanup func() error
}
