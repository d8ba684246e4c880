package strata_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

func Example() {
	ctx := context.Background()
	db, err := strata.OpenEphemeral()
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	run := strata.MustParseRunID("0193a6f0-1234-7000-8000-000000000001")
	v1, err := db.Put(ctx, run, []byte("status"), value.String("running"))
	if err != nil {
		log.Fatal(err)
	}
	// A CAS against a stale version is refused with a typed conflict.
	_, err = db.CAS(ctx, run, []byte("status"), v1+100, value.String("oops"))
	fmt.Println(errors.Is(err, strata.ErrConflict))

	v2, err := db.CAS(ctx, run, []byte("status"), v1, value.String("done"))
	if err != nil {
		log.Fatal(err)
	}
	got, err := db.Get(ctx, run, []byte("status"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Value, got.Version == v2, v2)
	// Output:
	// true
	// "done" true 2
}

func ExampleNewBuilder() {
	db, err := strata.NewBuilder().Strict().OpenTemp() // removed on Close
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	fmt.Println(db.DurabilityMode(), db.PersistenceMode())
	// Output: strict disk
}
