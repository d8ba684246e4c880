package harness

import (
	"errors"
	"os"
)

// freshDir creates a new, empty directory under os.TempDir for one store.
func freshDir(system string) (string, error) {
	return os.MkdirTemp("", "strata-bench-"+system+"-")
}

// closeAndRemove returns a func that closes a store and removes its
// directory.
func closeAndRemove(closeStore func() error, dir string) func() error {
	return func() error { return errors.Join(closeStore(), os.RemoveAll(dir)) }
}

// errBadValue reports a read that returned something other than the value
// loaded.
var errBadValue = errors.New("harness: read returned a value of the wrong size")
