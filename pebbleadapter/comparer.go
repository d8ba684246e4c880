package pebbleadapter

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/strata-db/strata/keyenc"
)

// ComparerName is persisted by Pebble; reopening a store with another name
// fails. Bump it when the key order changes.
const ComparerName = "strata.mvcc.v1"

// Comparer is the Pebble comparer for Strata's key layout (see keyenc). It is
// exported for tools and tests that open a Strata store with raw Pebble.
var Comparer = &pebble.Comparer{
	Name:                 ComparerName,
	Compare:              keyenc.Compare,
	Equal:                keyenc.Equal,
	Split:                keyenc.Split,
	ComparePointSuffixes: keyenc.CompareSuffixes,
	CompareRangeSuffixes: keyenc.CompareSuffixes,
	AbbreviatedKey:       keyenc.AbbreviatedKey,
	ValidateKey:          keyenc.ValidateKey,
	ImmediateSuccessor:   keyenc.ImmediateSuccessor,
	Separator:            keyenc.Separator,
	Successor:            keyenc.Successor,
	FormatKey:            func(k []byte) fmt.Formatter { return keyFormatter(k) },
}

type keyFormatter []byte

func (k keyFormatter) Format(s fmt.State, _ rune) {
	if d, err := keyenc.DecodeDataKey(k); err == nil {
		fmt.Fprintf(s, "run=%x tag=%d key=%q", d.Run, d.Tag, d.UserKey)
		if d.Version != 0 {
			fmt.Fprintf(s, "@%d", d.Version)
		}
		return
	}
	fmt.Fprintf(s, "%q", []byte(k))
}
