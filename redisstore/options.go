package redisstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultPrefix             = "ccrusage"
	DefaultFlushInterval      = 500 * time.Millisecond
	DefaultGrace              = 48 * time.Hour
	DefaultMaxPending         = 10_000
	DefaultTimeout            = time.Second
	DefaultSendUnclaimedAfter = 10
)

// maxQueuedAlerts bounds the alerts waiting for a claim. Past it, an alert is
// sent at once without a claim. A Tracker sends at most a few alerts per
// provider and day, so the bound is reached only by a long outage with
// SendUnclaimedAfter set very high.
const maxQueuedAlerts = 1024

// Options configures a Store. The zero value means every default.
type Options struct {
	// Prefix starts every key the store writes, so that several services,
	// or several tests, can share one Redis. It is used as a Redis Cluster
	// hash tag, so it must not contain '{' or '}'. Empty means
	// DefaultPrefix. Stores that count one quota together must use the
	// same Prefix.
	Prefix string

	// FlushInterval is how often the background goroutine exchanges counts
	// with Redis. Zero means DefaultFlushInterval (500 ms). A negative value
	// starts no goroutine: counts are exchanged only by Flush and Close.
	FlushInterval time.Duration

	// Grace is how long the counts of a day are kept after the day ends in
	// its provider's zone: each key expires at the day's end plus Grace.
	// It also bounds how long a flush may be retried without being applied
	// twice. Zero means DefaultGrace (48 hours). Use the same Grace in every
	// Store on one Prefix.
	Grace time.Duration

	// MaxPending bounds the count changes (one per provider, task and day)
	// buffered while Redis cannot be reached. Changes to keys past the bound
	// are dropped and counted in StoreStatus.Dropped. Zero means
	// DefaultMaxPending.
	MaxPending int

	// Timeout is the deadline of each round trip to Redis, the client's own
	// retries included, and of the initial read in Attach. Zero means
	// DefaultTimeout (1 s). go-redis applies a context deadline to reads and
	// writes only when the client's ContextTimeoutEnabled option is true.
	// Without it, the client's ReadTimeout and WriteTimeout bound them, and
	// Timeout bounds only dials and retries.
	Timeout time.Duration

	// SendUnclaimedAfter is the number of consecutive failed flushes after
	// which queued alerts are sent without a claim, and counted in
	// StoreStatus.UnclaimedAlerts. Zero means DefaultSendUnclaimedAfter
	// (10, five seconds at the default interval).
	SendUnclaimedAfter int

	// InstanceID names this Store in flush ids and alert claims. Empty
	// means 16 random bytes in hex. Flush ids also carry a random number
	// drawn by New, so a process restarted with the same InstanceID never
	// mistakes its predecessor's flushes for its own.
	InstanceID string
}

// withDefaults validates o and returns it with zero fields replaced by the
// defaults.
func (o Options) withDefaults() (Options, error) {
	if strings.ContainsAny(o.Prefix, "{}") {
		return o, fmt.Errorf("ccrusage: invalid Prefix %q: must not contain '{' or '}'", o.Prefix)
	}
	if o.Grace < 0 {
		return o, fmt.Errorf("ccrusage: invalid Grace %v: must not be negative", o.Grace)
	}
	if o.MaxPending < 0 {
		return o, fmt.Errorf("ccrusage: invalid MaxPending %d: must not be negative", o.MaxPending)
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("ccrusage: invalid Timeout %v: must not be negative", o.Timeout)
	}
	if o.SendUnclaimedAfter < 0 {
		return o, fmt.Errorf("ccrusage: invalid SendUnclaimedAfter %d: must not be negative", o.SendUnclaimedAfter)
	}

	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SendUnclaimedAfter == 0 {
		o.SendUnclaimedAfter = DefaultSendUnclaimedAfter
	}
	if o.InstanceID == "" {
		id, err := randomHex(16)
		if err != nil {
			return o, err
		}
		o.InstanceID = id
	}
	return o, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("ccrusage: reading random bytes failed: %w", err)
	}
	return hex.EncodeToString(b), nil
}
