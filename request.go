package ccrusage

import (
	"errors"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ErrRequestDone is returned when a Request is settled a second time, or
// when a zero Request is settled. The counts are left as the first
// settlement made them.
var ErrRequestDone = errors.New("ccrusage: request already settled or never begun")

// Request is one request recorded by Tracker.Begin and not yet settled. It
// is a small value, cheap to copy; copies refer to the same request. Settle
// it exactly once with Finish, FinishUnknown, Fail, Fallback or FinishOn;
// a later call returns ErrRequestDone and changes nothing. A Request that is
// never settled keeps its estimate in the counts.
type Request struct {
	state *requestState
	gen   uint64
}

// requestState is the shared part of a Request. States are reused through
// a sync.Pool, and gen distinguishes a live Request from a stale copy.
type requestState struct {
	gen atomic.Uint64
	tr  *Tracker // set when the pool creates the state, never changed

	p        *provider
	d        *day
	c        *counters
	task     int
	estimate int64
	begun    time.Time
}

// Begin records one request to provider for task before it is sent, with
// estimate, the estimated input tokens (see EstimateTokens). The request
// counts at once toward the provider's request limit and the estimate
// toward its token limit, on the day of the current time in the provider's
// zone. Settle it with the returned Request when the response arrives.
//
// Begin fails as Tracker.Record does on invalid names. A negative estimate
// is recorded as zero and counted in Snapshot.InvalidInputs.
func (tr *Tracker) Begin(provider, task string, estimate int64) (Request, error) {
	now := tr.now()
	p, ti, err := tr.resolve(provider, task, now)
	if err != nil {
		return Request{}, err
	}
	return tr.begin(p, ti, now, estimate), nil
}

// Begin records one request before it is sent, as Tracker.Begin does.
func (h Handle) Begin(estimate int64) Request {
	return h.tr.begin(h.p, h.task, h.tr.now(), estimate)
}

func (tr *Tracker) begin(p *provider, task int, now time.Time, estimate int64) Request {
	if estimate < 0 {
		tr.invalidInputs.Add(1)
		estimate = 0
	}

	d := p.dayAt(now)
	c := d.counters(task)
	c.requests.inc(1)
	c.estimated.inc(estimate)
	requests := d.requests.inc(1)
	tokens := d.tokens.inc(estimate)
	if requests >= d.nextRequests.Load() || tokens >= d.nextTokens.Load() {
		tr.evaluate(p, d, now)
	}

	s := tr.requests.Get().(*requestState)
	s.p, s.d, s.c, s.task, s.estimate, s.begun = p, d, c, task, estimate, now
	return Request{state: s, gen: s.gen.Load()}
}

// claim takes the request's state for settling. It returns nil if the
// request was settled before.
func (r Request) claim() *requestState {
	if r.state == nil || !r.state.gen.CompareAndSwap(r.gen, r.gen+1) {
		return nil
	}
	return r.state
}

// release returns s to the pool once its fields have been read.
func (s *requestState) release() {
	s.p, s.d, s.c, s.begun = nil, nil, nil, time.Time{}
	s.tr.requests.Put(s)
}

// Finish settles the request as served, replacing its estimate with u, the
// actual usage. The usage lands on the day the request was begun, even if
// the response arrives after midnight. Negative token counts are recorded as
// zero and counted in Snapshot.InvalidInputs.
func (r Request) Finish(u Usage) error {
	s := r.claim()
	if s == nil {
		return ErrRequestDone
	}
	s.finish(u)
	return nil
}

// finish settles the claimed state s as served with usage u.
func (s *requestState) finish(u Usage) {
	tr, p, d, c := s.tr, s.p, s.d, s.c
	estimate := s.estimate
	s.release()

	u, invalid := u.clamp()
	if invalid {
		tr.invalidInputs.Add(1)
	}
	c.estimated.add(-estimate)
	c.addUsage(u)
	tokens := d.tokens.add(u.Total() - estimate)
	now := tr.now()
	tr.settled(p, d, now)
	if tokens >= d.nextTokens.Load() {
		tr.evaluate(p, d, now)
	}
}

// FinishUnknown settles the request as served with usage that the provider
// did not report. The estimate stays in the counts in its place, and the
// request counts in Counts.UnknownUsage.
func (r Request) FinishUnknown() error {
	s := r.claim()
	if s == nil {
		return ErrRequestDone
	}
	tr, p, d, c := s.tr, s.p, s.d, s.c
	s.release()

	c.unknownUsage.inc(1)
	tr.settled(p, d, tr.now())
	return nil
}

// Fail settles the request as a failed attempt: it leaves the served
// requests and its estimate leaves the tokens, and it counts as a failure.
// Failures do not count toward the request limit.
func (r Request) Fail() error {
	return r.fail(false)
}

// Fallback settles the request as abandoned for another provider: a failure,
// as with Fail, that also counts one fallback on this request's provider.
// Begin the retry on the other provider as a new request.
func (r Request) Fallback() error {
	return r.fail(true)
}

func (r Request) fail(fallback bool) error {
	s := r.claim()
	if s == nil {
		return ErrRequestDone
	}
	tr, p, d, c := s.tr, s.p, s.d, s.c
	estimate := s.estimate
	s.release()

	tr.failed(p, d, c, estimate, fallback, tr.now())
	return nil
}

// failed moves a begun request from the served requests to the failures.
func (tr *Tracker) failed(p *provider, d *day, c *counters, estimate int64, fallback bool, now time.Time) {
	c.requests.add(-1)
	c.estimated.add(-estimate)
	c.failures.inc(1)
	if fallback {
		c.fallbacks.inc(1)
	}
	d.requests.add(-1)
	d.tokens.add(-estimate)
	tr.settled(p, d, now)
}

// FinishOn settles the request as served by another provider than the one
// it was begun on, as when CCR falls back on its own. The begun provider
// counts a failure and a fallback, as with Fallback. provider counts one
// served request with usage u for the same task. The usage lands on
// provider's day of the moment the request was begun while that day is
// still kept, and on its current day otherwise. If provider is the begun
// provider, FinishOn is Finish. It returns an error wrapping ErrInvalidName,
// and leaves the request unsettled, when provider is not a valid name.
func (r Request) FinishOn(provider string, u Usage) error {
	if r.state == nil || r.state.gen.Load() != r.gen {
		return ErrRequestDone
	}
	// Check the name before claiming, so that an invalid one leaves the
	// request open, and add the provider only after the claim, so that a
	// call that loses the race to settle adds nothing.
	if err := checkName("provider", provider); err != nil {
		return err
	}
	s := r.claim()
	if s == nil {
		return ErrRequestDone
	}
	tr := s.tr
	now := tr.now()
	served := tr.validProvider(provider, now)
	if served == s.p {
		s.finish(u)
		return nil
	}
	routed, d, c, task, estimate, begun := s.p, s.d, s.c, s.task, s.estimate, s.begun
	s.release()
	tr.failed(routed, d, c, estimate, true, now)

	d = served.dayAt(now)
	if prev := served.previous.Load(); prev != nil && DateOf(begun, served.loc) == prev.date {
		d = prev
	}
	tr.addServed(served, d, task, now, u)
	return nil
}

// settled counts usage that arrived for a day that is neither today nor
// yesterday: it changed that day's counts, which no read shows. It starts
// the day that now falls in first, so that a settlement two days late is
// not taken for today's.
func (tr *Tracker) settled(p *provider, d *day, now time.Time) {
	today := p.dayAt(now)
	if d == today {
		return
	}
	if p.previous.Load() != d || d.end != today.start {
		tr.lateUsage.Add(1)
	}
}

// EstimateTokens estimates the tokens of text at one token per four
// characters, rounded up: the usual rule of thumb for English text and
// code with the tokenizers of current LLMs. It is an estimate for counting a
// request before the provider reports its usage, never a substitute for
// that report. For CJK text and dense data it underestimates.
func EstimateTokens(text string) int64 {
	n := int64(utf8.RuneCountInString(text))
	return (n + 3) / 4
}
