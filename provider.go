package ccrusage

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Limits are a provider's daily limits. A zero field means unlimited: no
// ratio and no alerts for that limit.
type Limits struct {
	// Requests is the number of requests allowed per day.
	Requests int64 `json:"requests"`
	// Tokens is the number of tokens allowed per day, counting input,
	// output, cache-read and cache-creation tokens alike.
	Tokens int64 `json:"tokens"`
}

// provider is the state of one provider name.
type provider struct {
	name      string
	loc       *time.Location
	ppm       thresholdsPPM
	th        Thresholds // with defaults filled in
	taskSlots int

	// today is the current day. It is replaced under mu and read without
	// it on the record path.
	today atomic.Pointer[day]
	// previous is the day before today's bucket, or nil. It is replaced
	// under mu.
	previous atomic.Pointer[day]

	mu     sync.Mutex // guards limits, reported and every day's fired and level
	limits Limits
	// reported is the level last announced in an alert, carried across
	// days so that a new day can announce a recovery.
	reported Level
}

// day holds one provider's counts for one calendar day in its zone.
type day struct {
	date       Date
	start, end int64 // Unix seconds of [first instant, first instant of the next day)

	// nextRequests and nextTokens are the totals at which the level may
	// rise to one not yet announced today. Below both, a record needs no
	// evaluation.
	nextRequests atomic.Int64
	nextTokens   atomic.Int64

	tasks []atomic.Pointer[counters] // indexed by task index

	// others contains, by task index, the counts that other processes
	// recorded, as a Store reports them, with negative fields set to zero.
	// otherRequests and otherTokens are their saturating sums, which are
	// added to requests and tokens when the limits are checked.
	others        []atomic.Pointer[Counts]
	otherRequests atomic.Int64
	otherTokens   atomic.Int64

	// Guarded by provider.mu.
	fired uint8 // bit 1<<Level for each level announced on this day

	// requests and tokens are the provider's totals, the values its limits
	// are checked against on the record path. Every record writes them and
	// reads the fields above. The padding keeps them on a cache line of
	// their own, so that a record on one core does not evict the fields
	// above from the cache of another.
	_        [cacheLineSize]byte
	requests counter
	tokens   counter
	_        [cacheLineSize]byte
}

// cacheLineSize is the size of a CPU cache line in bytes on amd64 and on
// most arm64 cores.
const cacheLineSize = 64

func newDay(date Date, loc *time.Location, taskSlots int) *day {
	d := &day{
		date:   date,
		start:  date.Start(loc).Unix(),
		end:    date.AddDays(1).Start(loc).Unix(),
		tasks:  make([]atomic.Pointer[counters], taskSlots),
		others: make([]atomic.Pointer[Counts], taskSlots),
	}
	d.nextRequests.Store(math.MaxInt64)
	d.nextTokens.Store(math.MaxInt64)
	return d
}

// counters returns the counters of task index i, creating them on first
// use.
func (d *day) counters(i int) *counters {
	if c := d.tasks[i].Load(); c != nil {
		return c
	}
	return d.newCounters(i)
}

// newCounters stores new counters for task index i and returns them, or
// returns those that another goroutine stored first.
func (d *day) newCounters(i int) *counters {
	c := new(counters)
	if d.tasks[i].CompareAndSwap(nil, c) {
		return c
	}
	return d.tasks[i].Load()
}

// dayAt returns the day that a record at now belongs to, starting a new day
// if now has passed the current one. The current day never moves back: a
// clock stepped backwards records into the latest day.
func (p *provider) dayAt(now time.Time) *day {
	d := p.today.Load()
	if s := now.Unix(); s >= d.start && s < d.end {
		return d
	}
	return p.startDay(now)
}

// startDay is dayAt for a time outside the current day: it starts the day
// of now, or returns the current day unchanged if now is before it.
func (p *provider) startDay(now time.Time) *day {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.today.Load()
	date := DateOf(now, p.loc)
	if !d.date.Before(date) {
		return d
	}
	next := newDay(date, p.loc, p.taskSlots)
	if p.reported > LevelInfo {
		// Make the first record of the new day evaluate the level, so that
		// the recovery to INFO, or a fresh alert, is announced.
		next.nextRequests.Store(0)
		next.nextTokens.Store(0)
	} else {
		p.setNextLocked(next)
	}
	p.previous.Store(d)
	p.today.Store(next)
	return next
}

// setNextLocked stores in d the totals at which the next level not yet
// announced on d is reached.
func (p *provider) setNextLocked(d *day) {
	nextReq, nextTok := int64(math.MaxInt64), int64(math.MaxInt64)
	var ppm uint64
	switch {
	case d.fired&(1<<LevelWarning) == 0:
		ppm = p.ppm.warning
	case d.fired&(1<<LevelCritical) == 0:
		ppm = p.ppm.critical
	}
	if ppm != 0 {
		// The record path compares this process's own totals, so take what
		// the other processes counted off the thresholds.
		nextReq = max(countAt(p.limits.Requests, ppm)-d.otherRequests.Load(), 0)
		nextTok = max(countAt(p.limits.Tokens, ppm)-d.otherTokens.Load(), 0)
	}
	d.nextRequests.Store(nextReq)
	d.nextTokens.Store(nextTok)
}

// quotasLocked evaluates d's totals against the provider's limits.
func (p *provider) quotasLocked(d *day) (requests, tokens Quota) {
	usedRequests := addSaturating(d.requests.load(), max(d.otherRequests.Load(), 0))
	usedTokens := addSaturating(d.tokens.load(), max(d.otherTokens.Load(), 0))
	requests = evaluate(usedRequests, p.limits.Requests, p.ppm, p.th)
	tokens = evaluate(usedTokens, p.limits.Tokens, p.ppm, p.th)
	return requests, tokens
}

// setOthersLocked replaces the counts of task index i that other processes
// recorded, and recomputes their sums. Negative fields count as zero and
// the sums saturate, because a store's values are not checked anywhere
// else. The caller holds the provider's mu, so that two calls cannot store
// sums that miss each other's counts.
func (d *day) setOthersLocked(i int, c Counts) {
	c = c.nonNegative()
	c.Tokens = c.tokenSum()
	d.others[i].Store(&c)

	var requests, tokens int64
	for j := range d.others {
		if o := d.others[j].Load(); o != nil {
			requests = addSaturating(requests, o.Requests)
			tokens = addSaturating(tokens, o.Tokens)
		}
	}
	d.otherRequests.Store(requests)
	d.otherTokens.Store(tokens)
}

// evaluateLocked compares d's totals with the limits and returns the alert
// that the change of level calls for, if any. Each of WARNING and CRITICAL
// is announced at most once per day; a fall to INFO from an announced level
// is announced as a recovery. Only the current day is evaluated: usage that
// arrives late for an earlier day changes its counts, not its alerts.
func (p *provider) evaluateLocked(d *day, now time.Time) (Alert, bool) {
	if p.today.Load() != d {
		return Alert{}, false
	}

	// Drop the bars to zero before reading the counts, and store the real
	// ones at the end. A record adds its count and then loads the bars, so
	// a record whose count this read misses loads a zero bar and evaluates
	// after this call. Without that, a bar lowered here (SetLimits, or
	// SetOthers with more counts) would let that record skip its alert.
	d.nextRequests.Store(0)
	d.nextTokens.Store(0)
	requests, tokens := p.quotasLocked(d)
	level := max(requests.Level, tokens.Level)
	previous := p.reported

	send := false
	switch {
	case level == LevelInfo:
		send = previous > LevelInfo
		p.reported = LevelInfo
	case d.fired&(1<<level) == 0:
		// A jump straight to CRITICAL also uses up today's WARNING.
		send = true
		d.fired |= 1<<level | 1<<LevelWarning
		p.reported = level
	case level < previous:
		// Down from CRITICAL to WARNING, already announced today: no alert.
		p.reported = level
	}
	p.setNextLocked(d)
	if !send {
		return Alert{}, false
	}
	return newQuotaAlert(p.name, level, previous, requests, tokens, d.date, now), true
}
