//go:build race

package strata_test

const raceEnabled = true
