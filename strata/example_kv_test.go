package strata_test

import (
	"context"
	"fmt"
	"log"

	"github.com/strata-db/strata/strata"
	"github.com/strata-db/strata/value"
)

func ExampleDatabase_List() {
	ctx := context.Background()
	db, err := strata.OpenEphemeral()
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	run := strata.NewRunID()
	for _, k := range []string{"user/ann", "user/bob", "user/cid", "user/dee", "user/eve", "config"} {
		if _, err := db.Put(ctx, run, []byte(k), value.Bool(true)); err != nil {
			log.Fatal(err)
		}
	}

	// Page through the keys under "user/", two at a time: pass each page's
	// Next as the cursor of the following call until Next is nil.
	opts := strata.ListOptions{Limit: 2}
	for {
		page, err := db.List(ctx, run, []byte("user/"), opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q\n", page.Keys)
		if page.Next == nil {
			break
		}
		opts.Cursor = page.Next
	}
	// Output:
	// ["user/ann" "user/bob"]
	// ["user/cid" "user/dee"]
	// ["user/eve"]
}
