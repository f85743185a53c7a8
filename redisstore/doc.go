// Package redisstore shares the daily counts of ccrusage Trackers through
// Redis, so that several instances of a service count into one daily quota
// per provider and send each alert once in all.
//
// A Store plugs into a Tracker through ccrusage.Config.Store:
//
//	st, err := redisstore.New(client, redisstore.Options{Prefix: "my-service"})
//	if err != nil { ... }
//	defer st.Close()
//	tr, err := ccrusage.New(ccrusage.Config{Store: st, ...})
//
// The Tracker keeps counting in its own memory, so recording never waits
// on Redis. A background goroutine flushes every FlushInterval: it applies
// this process's changes and reads the day's totals in one Lua script, and
// hands the other processes' share to the Tracker, which evaluates levels
// on the sum. Alerts are claimed in Redis, one winner per provider, level
// and day, so that only one instance sends each.
//
// Keys carry the provider and its calendar date in its own zone, and each
// expires Options.Grace after that day ends. While Redis cannot be reached,
// changes are buffered (up to Options.MaxPending keys) and applied exactly
// once when it answers again: every batch has a flush id that the script
// sets before applying, so a batch whose reply was lost is not applied twice
// when it is retried.
//
// A Store is safe for concurrent use. It serves one Tracker.
package redisstore
