package strata_test

import (
	"strings"
	"testing"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

// stepPayload returns the payload of the benchmarks' events: an object
// {"msg": 80 characters, "step": i}, about 100 bytes encoded.
func stepPayload(i int) value.Value {
	return value.Object(map[string]value.Value{
		"step": value.Int(int64(i)),
		"msg":  value.String(strings.Repeat(string(rune('a'+i%26)), 80)),
	})
}

// BenchmarkAppendEvent measures one event append with DurabilityNone:
// Database.AppendEvent into logs that already hold 0, 1K and 1M events
// (loaded before timing, 1000 per AppendEvents call), and Txn.AppendEvent
// in a one-append Database.Transaction. Appends cost the same whatever the
// log's length: the head record, rewritten by every append, holds the
// length and the last hash. bench/ runs the same comparison against a
// single-put transaction and reports ratios. -short skips the 1M log.
func BenchmarkAppendEvent(b *testing.B) {
	payloads := make([]value.Value, 256)
	for i := range payloads {
		payloads[i] = stepPayload(i)
	}
	open := func(b *testing.B, preload int) (*strata.Database, strata.RunID) {
		db, err := strata.OpenWithMode(b.TempDir(), strata.DurabilityNone)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		run := strata.NewRunID()
		batch := make([]strata.EventData, 0, 1000)
		for lo := 0; lo < preload; lo += cap(batch) {
			batch = batch[:0]
			for i := lo; i < min(lo+cap(batch), preload); i++ {
				batch = append(batch, strata.EventData{Type: "step", Payload: payloads[i%len(payloads)]})
			}
			if _, err := db.AppendEvents(ctx, run, batch); err != nil {
				b.Fatal(err)
			}
		}
		return db, run
	}
	for _, log := range []struct {
		name string
		n    int
	}{{"0", 0}, {"1k", 1_000}, {"1M", 1_000_000}} {
		b.Run("direct/log="+log.name, func(b *testing.B) {
			if log.n >= 1_000_000 && testing.Short() {
				b.Skip("loads 1M events; skipped with -short")
			}
			db, run := open(b, log.n)
			for i := 0; b.Loop(); i++ {
				if _, err := db.AppendEvent(ctx, run, "step", payloads[i%len(payloads)]); err != nil {
					b.Fatal(err)
				}
			}
			if n, err := db.EventLen(ctx, run); err != nil || n < uint64(log.n+1) {
				b.Fatalf("log of %d events after the benchmark, %v", n, err)
			}
		})
	}
	b.Run("txn/log=0", func(b *testing.B) {
		db, run := open(b, 0)
		for i := 0; b.Loop(); i++ {
			err := db.Transaction(ctx, run, func(tx *strata.Txn) error {
				_, err := tx.AppendEvent("step", payloads[i%len(payloads)])
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyEvents measures Database.VerifyEvents over a whole log of
// 100k events, reporting events/s; the design's target is 1M events/s.
func BenchmarkVerifyEvents(b *testing.B) {
	const n = 100_000
	db, err := strata.OpenWithMode(b.TempDir(), strata.DurabilityNone)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	run := strata.NewRunID()
	batch := make([]strata.EventData, 1000)
	for lo := 0; lo < n; lo += len(batch) {
		for i := range batch {
			batch[i] = strata.EventData{Type: "step", Payload: stepPayload(lo + i)}
		}
		if _, err := db.AppendEvents(ctx, run, batch); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		v, err := db.VerifyEvents(ctx, run, nil)
		if err != nil {
			b.Fatal(err)
		}
		if !v.Valid || v.Length != n {
			b.Fatalf("verification %+v", v)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
