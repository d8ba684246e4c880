// Command window measures Batched mode's loss window: how long an
// acknowledged commit stays undurable, and how many acknowledged commits are
// at risk at any moment. It writes fresh keys from one goroutine into a
// Batched database for a fixed time, records when each version was
// acknowledged, and polls DurableVersion to record when each version became
// durable.
//
//	cd bench && go run ./cmd/window -duration 5s -interval 100ms -max-pending 1000
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long to write")
	interval := flag.Duration("interval", strata.DefaultSyncInterval, "Batched sync interval")
	maxPending := flag.Int("max-pending", strata.DefaultMaxPendingCommits, "Batched max pending commits")
	flag.Parse()
	if err := run(*duration, *interval, *maxPending); err != nil {
		log.Fatal(err)
	}
}

func run(duration, interval time.Duration, maxPending int) error {
	dir, err := os.MkdirTemp("", "strata-window-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := strata.OpenWith(strata.Options{Path: dir, SyncInterval: interval, MaxPendingCommits: maxPending})
	if err != nil {
		return err
	}
	defer db.Close()

	ctx := context.Background()
	run := strata.NewRunID()
	start := time.Now()
	var acked []time.Duration // acked[v-1]: when version v was acknowledged
	durableAt := map[uint64]time.Duration{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // poll the durable version
		defer close(done)
		var last uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			if d := db.DurableVersion(); d > last {
				durableAt[d] = time.Since(start)
				last = d
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	key, val := make([]byte, 16), make([]byte, 100)
	for time.Since(start) < duration {
		_, _ = rand.Read(key)
		v, err := db.Put(ctx, run, key, value.Bytes(val))
		if err != nil {
			return err
		}
		if v != uint64(len(acked)+1) {
			return fmt.Errorf("unexpected version %d", v)
		}
		acked = append(acked, time.Since(start))
	}
	time.Sleep(2 * interval) // let the syncer catch up
	close(stop)
	<-done

	marks := make([]uint64, 0, len(durableAt))
	for v := range durableAt {
		marks = append(marks, v)
	}
	slices.Sort(marks)
	var lags []time.Duration
	maxAtRisk := 0
	j := 0
	for i, ack := range acked {
		v := uint64(i + 1)
		for j < len(marks) && marks[j] < v {
			j++
		}
		if j == len(marks) {
			break
		}
		lags = append(lags, durableAt[marks[j]]-ack)
	}
	// Commits at risk: acknowledged but above the durable version, at each
	// durable-version change.
	k := 0
	for _, m := range marks {
		for k < len(acked) && acked[k] <= durableAt[m] {
			k++
		}
		maxAtRisk = max(maxAtRisk, k-int(m))
	}
	slices.Sort(lags)
	q := func(p float64) time.Duration { return lags[int(p*float64(len(lags)-1))] }
	fmt.Printf("| interval | max pending | commits | commits/s | syncs | ack→durable p50 | p99 | max | most commits at risk |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %v | %d | %d | %.0f | %d | %v | %v | %v | %d |\n", interval, maxPending, len(acked),
		float64(len(acked))/duration.Seconds(), db.Metrics().Syncs,
		q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), lags[len(lags)-1].Round(10*time.Microsecond), maxAtRisk)
	return nil
}
