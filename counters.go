package ccrusage

import (
	"math"
	"sync/atomic"
)

// Usage is the token usage of one request, by kind, as a provider reports
// it. Negative values are invalid: a Tracker records them as zero and counts
// the request in Snapshot.InvalidInputs.
type Usage struct {
	InputTokens         int64
	OutputTokens        int64
	CacheReadTokens     int64
	CacheCreationTokens int64
}

// Total returns the sum of all four kinds, saturating at math.MaxInt64.
// Negative fields count as zero. A Tracker's daily token limit applies to
// this sum.
func (u Usage) Total() int64 {
	return addSaturating(addSaturating(max(u.InputTokens, 0), max(u.OutputTokens, 0)),
		addSaturating(max(u.CacheReadTokens, 0), max(u.CacheCreationTokens, 0)))
}

// clamp returns u with negative fields set to zero, and whether any was
// negative.
func (u Usage) clamp() (Usage, bool) {
	invalid := u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheCreationTokens < 0
	if !invalid {
		return u, false
	}
	return Usage{
		InputTokens:         max(u.InputTokens, 0),
		OutputTokens:        max(u.OutputTokens, 0),
		CacheReadTokens:     max(u.CacheReadTokens, 0),
		CacheCreationTokens: max(u.CacheCreationTokens, 0),
	}, true
}

// addSaturating returns a+b for non-negative a and b, or math.MaxInt64 if
// the sum does not fit.
func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// counter is a daily count that saturates at math.MaxInt64 instead of
// wrapping. Once saturated it stays there, because the true value is no
// longer known.
//
// inc adds a delta below maxAtomicDelta with one atomic add and repairs an
// overflow afterwards. In between, the stored value is negative, which
// readers take as saturated. This happens only while a count passes
// math.MaxInt64.
type counter struct{ v atomic.Int64 }

// maxAtomicDelta bounds the deltas that inc adds with one atomic add.
//
// An add that wraps leaves a value below math.MinInt64+maxAtomicDelta, and
// every add that lands on a negative value stores math.MaxInt64 right
// after. Carrying the value back to zero or above, where readers take it
// for a true count, would need 2^31 more adds between one wrap and the next
// store: 2^31 goroutines paused inside inc at once. Two overlapping adds of
// 2^62 would suffice, so incSlow adds larger deltas without wrapping.
const maxAtomicDelta = 1 << 32

// inc adds delta, which must not be negative, and returns the new value.
// The record path calls it several times, so it is kept small enough for
// the compiler to inline: with Go 1.26 its cost is 80, the budget's limit.
func (c *counter) inc(delta int64) (n int64) {
	if delta < maxAtomicDelta {
		// Without overflow the sum is at least delta. A smaller one means
		// this add or an earlier one passed math.MaxInt64.
		if n = c.v.Add(delta); n >= delta {
			return
		}
	}
	return c.incSlow(delta)
}

// incSlow repairs the counter after an add in inc wrapped it, or adds a
// delta of maxAtomicDelta or more with a compare-and-swap, which never
// wraps the value. It is not inlined, because that would push inc past the
// inlining budget.
//
//go:noinline
func (c *counter) incSlow(delta int64) int64 {
	if delta < maxAtomicDelta {
		return c.saturate()
	}
	for {
		old := c.v.Load()
		if old < 0 {
			// An add in inc wrapped the value, and its caller stores
			// math.MaxInt64 next.
			return math.MaxInt64
		}
		next := addSaturating(old, delta)
		if c.v.CompareAndSwap(old, next) {
			return next
		}
	}
}

// saturate stores math.MaxInt64 after an overflow. Every add that detects
// the overflow stores it, so the counter ends saturated even when adds on
// other goroutines ran in between.
func (c *counter) saturate() int64 {
	c.v.Store(math.MaxInt64)
	return math.MaxInt64
}

// add adds delta, which may be negative, keeping the value within
// [0, math.MaxInt64], and returns the new value.
func (c *counter) add(delta int64) int64 {
	if delta >= 0 {
		return c.inc(delta)
	}
	return c.sub(delta)
}

// sub is add for a negative delta: it stops at zero, and leaves a
// saturated counter saturated.
func (c *counter) sub(delta int64) int64 {
	for {
		old := c.v.Load()
		if old < 0 || old == math.MaxInt64 {
			return math.MaxInt64
		}
		next := max(old+delta, 0) // old >= 0 and delta < 0: no overflow
		if c.v.CompareAndSwap(old, next) {
			return next
		}
	}
}

func (c *counter) load() int64 {
	if v := c.v.Load(); v >= 0 {
		return v
	}
	return math.MaxInt64
}

// counters are the counts of one provider and task type on one day.
type counters struct {
	// requests counts requests recorded and not failed: served, plus begun
	// and not yet finished.
	requests counter
	// failures counts requests that failed or were abandoned.
	failures counter
	// fallbacks counts requests abandoned for another provider.
	fallbacks counter
	// unknownUsage counts served requests whose usage was not reported.
	unknownUsage counter

	input         counter
	output        counter
	cacheRead     counter
	cacheCreation counter
	// estimated holds the estimates of requests whose actual usage has not
	// arrived: in flight, or finished with unknown usage.
	estimated counter
}

// addUsage adds u, which must be clamped, skipping zero kinds so that a
// typical record costs two atomic operations, not four.
func (c *counters) addUsage(u Usage) {
	if u.InputTokens != 0 {
		c.input.inc(u.InputTokens)
	}
	if u.OutputTokens != 0 {
		c.output.inc(u.OutputTokens)
	}
	if u.CacheReadTokens != 0 {
		c.cacheRead.inc(u.CacheReadTokens)
	}
	if u.CacheCreationTokens != 0 {
		c.cacheCreation.inc(u.CacheCreationTokens)
	}
}

// Counts are the counts of one provider, one task type or a total, for one
// day. Token counts saturate at math.MaxInt64.
type Counts struct {
	// Requests counts requests recorded and not failed: served ones plus
	// those begun and not yet finished.
	Requests int64 `json:"requests"`
	// Failures counts failed attempts, fallbacks included.
	Failures int64 `json:"failures"`
	// Fallbacks counts requests abandoned for another provider.
	Fallbacks int64 `json:"fallbacks"`
	// UnknownUsage counts served requests whose provider reported no usage;
	// their estimates stay in EstimatedTokens.
	UnknownUsage int64 `json:"unknown_usage"`

	InputTokens         int64 `json:"input_tokens"`
	OutputTokens        int64 `json:"output_tokens"`
	CacheReadTokens     int64 `json:"cache_read_tokens"`
	CacheCreationTokens int64 `json:"cache_creation_tokens"`
	// EstimatedTokens are estimates standing in for actual usage that has
	// not arrived.
	EstimatedTokens int64 `json:"estimated_tokens"`
	// Tokens is the sum of the five token fields above: what a daily token
	// limit counts.
	Tokens int64 `json:"tokens"`
}

// load reads c into a Counts value. Each field is read once; records that
// run at the same time may be partly included.
func (c *counters) load() Counts {
	n := Counts{
		Requests:            c.requests.load(),
		Failures:            c.failures.load(),
		Fallbacks:           c.fallbacks.load(),
		UnknownUsage:        c.unknownUsage.load(),
		InputTokens:         c.input.load(),
		OutputTokens:        c.output.load(),
		CacheReadTokens:     c.cacheRead.load(),
		CacheCreationTokens: c.cacheCreation.load(),
		EstimatedTokens:     c.estimated.load(),
	}
	n.Tokens = n.tokenSum()
	return n
}

func (n Counts) tokenSum() int64 {
	return addSaturating(Usage{n.InputTokens, n.OutputTokens, n.CacheReadTokens, n.CacheCreationTokens}.Total(), n.EstimatedTokens)
}

// add returns n+m field by field, saturating.
func (n Counts) add(m Counts) Counts {
	r := Counts{
		Requests:            addSaturating(n.Requests, m.Requests),
		Failures:            addSaturating(n.Failures, m.Failures),
		Fallbacks:           addSaturating(n.Fallbacks, m.Fallbacks),
		UnknownUsage:        addSaturating(n.UnknownUsage, m.UnknownUsage),
		InputTokens:         addSaturating(n.InputTokens, m.InputTokens),
		OutputTokens:        addSaturating(n.OutputTokens, m.OutputTokens),
		CacheReadTokens:     addSaturating(n.CacheReadTokens, m.CacheReadTokens),
		CacheCreationTokens: addSaturating(n.CacheCreationTokens, m.CacheCreationTokens),
		EstimatedTokens:     addSaturating(n.EstimatedTokens, m.EstimatedTokens),
	}
	r.Tokens = r.tokenSum()
	return r
}

// nonNegative returns n with negative fields set to zero. Tokens is kept
// as it is.
func (n Counts) nonNegative() Counts {
	return Counts{
		Requests:            max(n.Requests, 0),
		Failures:            max(n.Failures, 0),
		Fallbacks:           max(n.Fallbacks, 0),
		UnknownUsage:        max(n.UnknownUsage, 0),
		InputTokens:         max(n.InputTokens, 0),
		OutputTokens:        max(n.OutputTokens, 0),
		CacheReadTokens:     max(n.CacheReadTokens, 0),
		CacheCreationTokens: max(n.CacheCreationTokens, 0),
		EstimatedTokens:     max(n.EstimatedTokens, 0),
		Tokens:              n.Tokens,
	}
}

// sub returns n-m field by field, for the changes between two readings of
// the same counters. Tokens is left zero.
func (n Counts) sub(m Counts) Counts {
	return Counts{
		Requests:            n.Requests - m.Requests,
		Failures:            n.Failures - m.Failures,
		Fallbacks:           n.Fallbacks - m.Fallbacks,
		UnknownUsage:        n.UnknownUsage - m.UnknownUsage,
		InputTokens:         n.InputTokens - m.InputTokens,
		OutputTokens:        n.OutputTokens - m.OutputTokens,
		CacheReadTokens:     n.CacheReadTokens - m.CacheReadTokens,
		CacheCreationTokens: n.CacheCreationTokens - m.CacheCreationTokens,
		EstimatedTokens:     n.EstimatedTokens - m.EstimatedTokens,
	}
}
