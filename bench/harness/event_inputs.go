package harness

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

// Shape of the events the event groups append: type eventType and a
// payload object {"msg": eventMsgLen printable characters, "step": int},
// about 100 bytes encoded.
const (
	eventType   = "step"
	eventMsgLen = 80
	// eventPayloadRing is the number of distinct payloads per goroutine and
	// rep; operation i appends payload i mod eventPayloadRing. Their
	// messages are disjoint windows of random text (640 KiB in all), too far
	// apart for block compression to find the repeats.
	eventPayloadRing = 8192
	// eventBatch is the number of events per Database.AppendEvents call when
	// a log is loaded, untimed.
	eventBatch = 1000
)

// Streams of newRand for the event inputs, apart from those of inputs.go.
const (
	streamEventMsgs uint64 = 0x4556_0001 + iota
	streamEventLoad
)

// eventPayloads is a ring of payloads, built before timing starts so that
// an operation does not pay for building its payload's map.
type eventPayloads []value.Value

// newEventPayloads returns n payloads drawn from r; payload j has step j.
func newEventPayloads(r *rand.ChaCha8, n int) eventPayloads {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ." // 64 characters
	raw := randomBytes(r, n*eventMsgLen)
	for i, b := range raw {
		raw[i] = alphabet[b&63]
	}
	text := string(raw)
	ps := make(eventPayloads, n)
	for j := range ps {
		ps[j] = value.Object(map[string]value.Value{
			"step": value.Int(int64(j)),
			"msg":  value.String(text[j*eventMsgLen : (j+1)*eventMsgLen]),
		})
	}
	return ps
}

// payload returns the payload of operation i. Callers never modify it.
func (ps eventPayloads) payload(i int) value.Value { return ps[i%len(ps)] }

// eventInputs are the payloads of one rep of an append workload, per
// goroutine.
type eventInputs []eventPayloads

func newEventInputs(p Plan) eventInputs {
	in := make(eventInputs, p.Goroutines)
	for g := range in {
		in[g] = newEventPayloads(newRand(streamEventMsgs, p.Rep, g), min(p.OpsPerGoroutine, eventPayloadRing))
	}
	return in
}

// newLoadPayloads returns the payloads of the events loaded, untimed, into
// the long and short logs.
func newLoadPayloads() eventPayloads {
	return newEventPayloads(newRand(streamEventLoad, 0, 0), eventPayloadRing)
}

// loadEvents appends n events to run, eventBatch per Database.AppendEvents
// call.
func loadEvents(ctx context.Context, db *strata.Database, run strata.RunID, n int, ps eventPayloads) error {
	batch := make([]strata.EventData, 0, eventBatch)
	for lo := 0; lo < n; lo += eventBatch {
		batch = batch[:0]
		for i := lo; i < min(lo+eventBatch, n); i++ {
			batch = append(batch, strata.EventData{Type: eventType, Payload: ps.payload(i)})
		}
		if _, err := db.AppendEvents(ctx, run, batch); err != nil {
			return fmt.Errorf("load events %d to %d of %d: %w", lo, lo+len(batch)-1, n, err)
		}
	}
	return nil
}
