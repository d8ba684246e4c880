package harness

import (
	"testing"

	"github.com/strata-db/strata/events"
	"github.com/strata-db/strata/value"
)

func TestEventGroupsListed(t *testing.T) {
	names := []string{"event-append", "event-append-1m", "event-verify"}
	gs, err := Lookup(names)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range gs {
		if g.Name != names[i] {
			t.Errorf("group %d is %s, want %s", i, g.Name, names[i])
		}
		if len(g.Targets) != 1 {
			t.Errorf("%s: %d targets, want 1", g.Name, len(g.Targets))
		}
	}
}

// TestEventPayloads checks the shape of the appended events: a valid type
// and payload object of about 100 bytes, the same in every rep's inputs
// for a given rep and different across reps.
func TestEventPayloads(t *testing.T) {
	if err := events.ValidateType(eventType); err != nil {
		t.Fatal(err)
	}
	p := Plan{Rep: 0, Goroutines: 2, OpsPerGoroutine: 3 * eventPayloadRing}
	in := newEventInputs(p)
	if len(in) != 2 || len(in[0]) != eventPayloadRing {
		t.Fatalf("inputs of %d goroutines, %d payloads each", len(in), len(in[0]))
	}
	for i := range 10 {
		pl := in[0].payload(i)
		if err := events.ValidatePayload(pl); err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		enc, err := value.Encode(pl)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(enc); n < 90 || n > 110 {
			t.Errorf("payload %d encodes to %d bytes, want about 100", i, n)
		}
		obj, _ := pl.AsObject()
		if msg, _ := obj["msg"].AsString(); len(msg) != eventMsgLen {
			t.Errorf("payload %d: message of %d characters", i, len(msg))
		}
	}
	if !value.Equal(in[0].payload(1), in[0].payload(1+eventPayloadRing)) {
		t.Error("payloads do not repeat with the ring's period")
	}
	if value.Equal(in[0].payload(1), in[1].payload(1)) {
		t.Error("two goroutines append the same payloads")
	}
	if again := newEventInputs(p); !value.Equal(in[1].payload(5), again[1].payload(5)) {
		t.Error("inputs are not deterministic")
	}
	if small := newEventInputs(Plan{Goroutines: 1, OpsPerGoroutine: 7}); len(small[0]) != 7 {
		t.Errorf("%d payloads for 7 ops", len(small[0]))
	}
}
