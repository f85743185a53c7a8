package redisstore_test

import (
	"log/slog"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/ccrusage/ccrusage/redisstore"
	"github.com/redis/go-redis/v9"
)

// Each replica of a service creates its Tracker this way. The replicas
// count into one daily quota per provider, and each alert is sent by one
// replica only. The example has no output because it needs a Redis server.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:6379",
		// Let the store's Timeout cut reads and writes short, too.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	st, err := redisstore.New(client, redisstore.Options{
		Prefix: "agent-service",
		Grace:  48 * time.Hour,
	})
	if err != nil {
		panic(err)
	}
	// Close flushes what is left; the deferred call runs before the client
	// closes.
	defer st.Close()

	tr, err := ccrusage.New(ccrusage.Config{
		Store: st,
		Sink:  ccrusage.NewSlogSink(slog.Default()),
		Providers: []ccrusage.ProviderConfig{
			{Name: ccrusage.ProviderGemini, Limits: ccrusage.Limits{Requests: 1500}},
		},
	})
	if err != nil {
		panic(err)
	}

	_ = tr.Record(ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 900, OutputTokens: 120})
}
