package strata_test

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
	"github.com/stretchr/testify/require"
)

// Linearizability of state cells: concurrent clients run init, set, CAS,
// read and delete on a few cells through the direct Database operations,
// and porcupine checks the recorded history against a sequential model of
// one cell (the history is partitioned by cell).

type cellOp uint8

const (
	cellInit cellOp = iota
	cellSet
	cellCAS
	cellRead
	cellDelete
)

func (o cellOp) String() string {
	return [...]string{"init", "set", "cas", "read", "delete"}[o]
}

// cellInput is one call: op on cell, with value (init, set, CAS) and the
// expected counter (CAS).
type cellInput struct {
	op       cellOp
	cell     string
	value    int64
	expected uint64
}

type cellOutcome uint8

const (
	outOK       cellOutcome = iota
	outExists               // ErrStateExists
	outNotFound             // ErrNotFound
	outConflict             // *ConflictError
)

func (o cellOutcome) String() string {
	return [...]string{"ok", "exists", "not found", "conflict"}[o]
}

// cellOutput is what the call returned: the outcome, the counter (init,
// set, CAS, read), the value (read) and whether the cell existed (delete).
type cellOutput struct {
	outcome cellOutcome
	counter uint64
	value   int64
	existed bool
}

// cellState is the sequential model of one cell. A deleted cell is not live
// but keeps its counter: the next init or set continues from it.
type cellState struct {
	live    bool
	value   int64
	counter uint64
}

// stepCell is the sequential specification of a state cell. restartCounters
// makes it deliberately wrong: delete forgets the counter, as if counters
// restarted at 1 for a new incarnation.
func stepCell(s cellState, in cellInput, out cellOutput, restartCounters bool) (bool, cellState) {
	written := cellState{live: true, value: in.value, counter: s.counter + 1}
	switch in.op {
	case cellInit:
		if s.live {
			return out.outcome == outExists, s
		}
		return out.outcome == outOK && out.counter == written.counter, written
	case cellSet:
		return out.outcome == outOK && out.counter == written.counter, written
	case cellCAS:
		switch {
		case s.live && s.counter == in.expected:
			return out.outcome == outOK && out.counter == written.counter, written
		case s.live:
			return out.outcome == outConflict, s
		default:
			// A CAS that finds the cell deleted returns ErrNotFound; one
			// that read it live and lost the commit to the delete returns
			// a *ConflictError ("a commit lost against a concurrent one").
			// Either way it wrote nothing, and the cell is not live with
			// the expected counter.
			return out.outcome == outNotFound || out.outcome == outConflict, s
		}
	case cellRead:
		if !s.live {
			return out.outcome == outNotFound, s
		}
		return out.outcome == outOK && out.value == s.value && out.counter == s.counter, s
	case cellDelete:
		deleted := cellState{counter: s.counter}
		if restartCounters {
			deleted.counter = 0
		}
		return out.outcome == outOK && out.existed == s.live, deleted
	}
	panic(fmt.Sprintf("unknown op %d", in.op))
}

// retryExhausted is the output of an init, set or delete that gave up after
// its retries: it wrote nothing, which is legal in any state.
func retryExhausted(in cellInput, out cellOutput) bool {
	return in.op != cellCAS && out.outcome == outConflict
}

func cellModel(restartCounters bool) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byCell := map[string][]porcupine.Operation{}
			var cells []string
			for _, op := range history {
				c := op.Input.(cellInput).cell
				if _, ok := byCell[c]; !ok {
					cells = append(cells, c)
				}
				byCell[c] = append(byCell[c], op)
			}
			out := make([][]porcupine.Operation, len(cells))
			for i, c := range cells {
				out[i] = byCell[c]
			}
			return out
		},
		Init: func() any { return cellState{} },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(cellState), input.(cellInput), output.(cellOutput)
			if retryExhausted(in, out) {
				return true, s
			}
			ok, next := stepCell(s, in, out, restartCounters)
			if !ok {
				return false, s
			}
			return true, next
		},
		Hash: func(state any) uint64 {
			s := state.(cellState)
			h := s.counter*0x9e3779b97f4a7c15 ^ uint64(s.value)
			if s.live {
				h ^= 1 << 63
			}
			return h
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(cellInput), output.(cellOutput)
			args := ""
			switch in.op {
			case cellInit, cellSet:
				args = fmt.Sprint(in.value)
			case cellCAS:
				args = fmt.Sprintf("%d, %d", in.expected, in.value)
			}
			res := out.outcome.String()
			switch {
			case out.outcome != outOK:
			case in.op == cellRead:
				res = fmt.Sprintf("%d @%d", out.value, out.counter)
			case in.op == cellDelete:
				res = fmt.Sprintf("existed=%v", out.existed)
			default:
				res = fmt.Sprintf("@%d", out.counter)
			}
			return fmt.Sprintf("%s(%s %s) -> %s", in.op, in.cell, args, res)
		},
		DescribeState: func(state any) string {
			s := state.(cellState)
			if !s.live {
				return fmt.Sprintf("absent, last counter %d", s.counter)
			}
			return fmt.Sprintf("%d @%d", s.value, s.counter)
		},
	}
}

// runCellOp performs in against db and classifies the result.
func runCellOp(db *strata.Database, run strata.RunID, in cellInput) (cellOutput, error) {
	var (
		out cellOutput
		err error
	)
	switch in.op {
	case cellInit:
		out.counter, err = db.StateInit(ctx, run, in.cell, value.Int(in.value))
	case cellSet:
		out.counter, err = db.StateSet(ctx, run, in.cell, value.Int(in.value))
	case cellCAS:
		out.counter, err = db.StateCAS(ctx, run, in.cell, in.expected, value.Int(in.value))
	case cellRead:
		var s strata.State
		s, err = db.StateRead(ctx, run, in.cell)
		if err == nil {
			var ok bool
			if out.value, ok = s.Value.AsInt(); !ok {
				return out, fmt.Errorf("read %s: not an int: %v", in.cell, s.Value)
			}
			out.counter = s.Counter
		}
	case cellDelete:
		out.existed, err = db.StateDelete(ctx, run, in.cell)
	}
	var ce *strata.ConflictError
	switch {
	case err == nil:
		out.outcome = outOK
	case in.op == cellInit && errors.Is(err, strata.ErrStateExists):
		out.outcome = outExists
	case (in.op == cellCAS || in.op == cellRead) && errors.Is(err, strata.ErrNotFound):
		out.outcome = outNotFound
	case errors.As(err, &ce) && len(ce.Primitives) == 1 && ce.Primitives[0] == strata.PrimitiveState:
		out.outcome = outConflict
	default:
		return out, fmt.Errorf("%s %s: unexpected error: %w", in.op, in.cell, err)
	}
	return out, nil
}

// recordCellHistory runs clients goroutines of ops random operations each on
// cells and returns the history.
func recordCellHistory(t *testing.T, clients, ops int, cells []string) []porcupine.Operation {
	t.Helper()
	db, run := openTxnDB(t)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	histories := make([][]porcupine.Operation, clients)
	errs := make(chan error, clients*ops)
	var wg sync.WaitGroup
	release := make(chan struct{}) // release the clients together
	for c := range clients {
		wg.Go(func() {
			<-release
			rng := rand.New(rand.NewPCG(uint64(c), 0x5eed))
			last := map[string]uint64{} // the last counter this client saw per cell
			for i := range ops {
				in := cellInput{cell: cells[rng.IntN(len(cells))], value: int64(c*1_000_000 + i)}
				switch p := rng.IntN(100); {
				case p < 15:
					in.op = cellInit
				case p < 30:
					in.op = cellSet
				case p < 60:
					in.op = cellCAS
					in.expected = last[in.cell]
					if rng.IntN(4) == 0 { // sometimes a stale or future counter
						in.expected += uint64(rng.IntN(3)) - 1
					}
				case p < 85:
					in.op = cellRead
				default:
					in.op = cellDelete
				}
				// The yields widen each interval so that the operations of
				// different clients overlap even on a busy single core.
				call := now()
				runtime.Gosched()
				out, err := runCellOp(db, run, in)
				runtime.Gosched()
				ret := now()
				if err != nil {
					errs <- err
					continue
				}
				if out.counter != 0 {
					last[in.cell] = out.counter
				}
				histories[c] = append(histories[c], porcupine.Operation{
					ClientId: c, Input: in, Call: call, Output: out, Return: ret,
				})
			}
		})
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var history []porcupine.Operation
	for _, h := range histories {
		history = append(history, h...)
	}
	return history
}

// checkCells checks history against model and, when the verdict is not
// want, saves a visualisation and fails.
func checkCells(t *testing.T, model porcupine.Model, history []porcupine.Operation, want porcupine.CheckResult) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(model, history, time.Minute)
	if res != want {
		path := filepath.Join(t.TempDir(), "history.html")
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Logf("visualisation: %s (copy it out before the test's directory is removed)", path)
		}
		t.Fatalf("porcupine: %s, want %s", res, want)
	}
}

// overlappingOps counts the operations whose interval overlaps that of an
// earlier-called operation on the same cell.
func overlappingOps(history []porcupine.Operation) int {
	byCell := map[string][]porcupine.Operation{}
	for _, op := range history {
		c := op.Input.(cellInput).cell
		byCell[c] = append(byCell[c], op)
	}
	n := 0
	for _, ops := range byCell {
		slices.SortFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		maxReturn := int64(-1)
		for _, op := range ops {
			if op.Call <= maxReturn {
				n++
			}
			maxReturn = max(maxReturn, op.Return)
		}
	}
	return n
}

func TestStateLinearizable(t *testing.T) {
	const clients, ops = 8, 200
	history := recordCellHistory(t, clients, ops, []string{"a", "b", "c"})
	require.Len(t, history, clients*ops)

	// The history exercises every outcome the model distinguishes,
	// including a re-initialisation after a delete (counter > 1 on init).
	seen := map[string]int{}
	for _, op := range history {
		in, out := op.Input.(cellInput), op.Output.(cellOutput)
		seen[fmt.Sprintf("%s %s", in.op, out.outcome)]++
		if in.op == cellInit && out.outcome == outOK && out.counter > 1 {
			seen["re-init"]++
		}
	}
	overlapping := overlappingOps(history)
	t.Logf("outcomes: %v; %d of %d operations overlap another on the same cell", seen, overlapping, len(history))
	require.Greater(t, overlapping, len(history)/10, "too little concurrency to test anything")
	for _, k := range []string{
		"init ok", "init exists", "set ok", "cas ok", "cas conflict", "cas not found",
		"read ok", "read not found", "delete ok", "re-init",
	} {
		require.Positive(t, seen[k], "the history has no %q", k)
	}

	checkCells(t, cellModel(false), history, porcupine.Ok)
	// The same history is illegal for a model whose counters restart after a
	// delete: the checker bites.
	checkCells(t, cellModel(true), history, porcupine.Illegal)
}

// The models on small histories written by hand, so that what the checker
// accepts and rejects does not depend on timing.
func TestStateLinearizabilityModel(t *testing.T) {
	type step struct {
		client    int
		call, ret int64
		in        cellInput
		out       cellOutput
	}
	history := func(steps ...step) []porcupine.Operation {
		var h []porcupine.Operation
		for _, s := range steps {
			s.in.cell = "x"
			h = append(h, porcupine.Operation{ClientId: s.client, Input: s.in, Call: s.call, Output: s.out, Return: s.ret})
		}
		return h
	}
	ok := func(c uint64) cellOutput { return cellOutput{outcome: outOK, counter: c} }
	reinit := history(
		step{0, 0, 1, cellInput{op: cellInit, value: 10}, ok(1)},
		step{0, 2, 3, cellInput{op: cellSet, value: 11}, ok(2)},
		step{0, 4, 5, cellInput{op: cellDelete}, cellOutput{existed: true}},
		step{1, 6, 7, cellInput{op: cellRead}, cellOutput{outcome: outNotFound}},
		step{1, 8, 9, cellInput{op: cellInit, value: 12}, ok(3)},
		step{0, 10, 11, cellInput{op: cellCAS, expected: 1, value: 13}, cellOutput{outcome: outConflict}},
		step{1, 12, 13, cellInput{op: cellRead}, cellOutput{counter: 3, value: 12}},
	)
	checkCells(t, cellModel(false), reinit, porcupine.Ok)
	checkCells(t, cellModel(true), reinit, porcupine.Illegal)

	restarted := history(
		step{0, 0, 1, cellInput{op: cellInit, value: 10}, ok(1)},
		step{0, 2, 3, cellInput{op: cellDelete}, cellOutput{existed: true}},
		step{0, 4, 5, cellInput{op: cellInit, value: 11}, ok(1)},
	)
	checkCells(t, cellModel(false), restarted, porcupine.Illegal)
	checkCells(t, cellModel(true), restarted, porcupine.Ok)

	bothCASWin := history(
		step{0, 0, 1, cellInput{op: cellInit, value: 10}, ok(1)},
		step{0, 2, 5, cellInput{op: cellCAS, expected: 1, value: 11}, ok(2)},
		step{1, 2, 5, cellInput{op: cellCAS, expected: 1, value: 12}, ok(2)},
	)
	checkCells(t, cellModel(false), bothCASWin, porcupine.Illegal)

	oneCASWins := history(
		step{0, 0, 1, cellInput{op: cellInit, value: 10}, ok(1)},
		step{0, 2, 5, cellInput{op: cellCAS, expected: 1, value: 11}, cellOutput{outcome: outConflict}},
		step{1, 2, 5, cellInput{op: cellCAS, expected: 1, value: 12}, ok(2)},
		step{2, 6, 7, cellInput{op: cellRead}, cellOutput{counter: 2, value: 12}},
	)
	checkCells(t, cellModel(false), oneCASWins, porcupine.Ok)

	staleRead := history(
		step{0, 0, 1, cellInput{op: cellInit, value: 10}, ok(1)},
		step{0, 2, 3, cellInput{op: cellSet, value: 11}, ok(2)},
		step{1, 4, 5, cellInput{op: cellRead}, cellOutput{counter: 1, value: 10}},
	)
	checkCells(t, cellModel(false), staleRead, porcupine.Illegal)

	bothInitsWin := history(
		step{0, 0, 3, cellInput{op: cellInit, value: 10}, ok(1)},
		step{1, 0, 3, cellInput{op: cellInit, value: 11}, ok(1)},
	)
	checkCells(t, cellModel(false), bothInitsWin, porcupine.Illegal)
}
