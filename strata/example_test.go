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

func ExampleDatabase_Transaction() {
	ctx := context.Background()
	db, err := strata.OpenEphemeral()
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	run := strata.NewRunID()

	// Move 30 from a to b: both writes commit together or not at all, and
	// the transaction is retried if a concurrent commit changed a or b.
	_, _ = db.Put(ctx, run, []byte("a"), value.Int(100))
	_, _ = db.Put(ctx, run, []byte("b"), value.Int(0))
	err = db.Transaction(ctx, run, func(tx *strata.Txn) error {
		a, err := tx.Get([]byte("a"))
		if err != nil {
			return err
		}
		b, err := tx.Get([]byte("b"))
		if err != nil {
			return err
		}
		av, _ := a.Value.AsInt()
		bv, _ := b.Value.AsInt()
		if err := tx.Put([]byte("a"), value.Int(av-30)); err != nil {
			return err
		}
		return tx.Put([]byte("b"), value.Int(bv+30))
	}, strata.WithRetry(strata.RetryConfig{}))
	if err != nil {
		log.Fatal(err)
	}
	a, _ := db.Get(ctx, run, []byte("a"))
	b, _ := db.Get(ctx, run, []byte("b"))
	fmt.Println(a.Value, b.Value)
	// Output: 70 30
}
