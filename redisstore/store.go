package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/redis/go-redis/v9"
)

// maxRounds bounds the round trips of one Flush: the retry of a batch that
// failed before, the batch of new changes, and the claims of alerts that
// the new totals raised.
const maxRounds = 3

// Store is a ccrusage.Store that shares daily counts and alert claims
// through Redis. Create one with New, hand it to one Tracker in
// ccrusage.Config.Store, and Close it when the Tracker is done. A Store is
// safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	opts   Options
	keys   keyspace
	// run is drawn by New and keeps the flush ids of this Store apart from
	// those of an earlier Store with the same InstanceID.
	run string

	// ctx is cancelled by Close to cut short a background flush.
	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{} // wakes the background goroutine for an early flush
	stopped chan struct{} // closed when the background goroutine returns

	closeOnce sync.Once
	closeErr  error

	// flushMu serializes flushes, so that a batch is sent by one flush at a
	// time and applied changes are added up in order.
	flushMu sync.Mutex

	mu sync.Mutex // guards every field below
	// shared is the Tracker's side, set by Attach.
	shared *ccrusage.Shared
	// pending holds changes collected and not yet in a batch, inflight the
	// batch sent and not yet acknowledged, and alerts the alerts queued and
	// not yet in a batch.
	pending  map[taskKey]change
	inflight *batch
	alerts   []*claim
	seq      uint64
	// lastFlushKey is the flush id key of the last acknowledged batch,
	// which the next batch deletes.
	lastFlushKey string
	// applied holds the cumulative changes this Store applied, per key,
	// which the totals minus give the counts of the other processes.
	applied   map[taskKey]change
	failures  int // consecutive failed flushes
	available bool
	lastError string
	lastSync  time.Time
	dropped   int64
	unclaimed int64
	closed    bool
}

var _ ccrusage.Store = (*Store)(nil)

// New returns a Store on client with opts. It returns an error naming the
// field when an option is invalid. It sends nothing to Redis: Attach, which
// ccrusage.New calls, reads the shared totals once and starts the
// background goroutine. The caller keeps ownership of client: Close does not
// close it.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("ccrusage: redis client is nil")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	run, err := randomHex(8)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		client:  client,
		opts:    opts,
		keys:    newKeyspace(opts.Prefix),
		run:     run,
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		pending: map[taskKey]change{},
		applied: map[taskKey]change{},
	}, nil
}

// Attach connects the Store to a Tracker; ccrusage.New calls it. It reads
// the day's shared totals, within Options.Timeout, so that a
// restarted process starts from the counts of the day. It fails only when
// the Store is attached already or closed: an unreachable Redis shows in
// Status and does not keep the Tracker from starting. Unless FlushInterval
// is negative, it starts the goroutine that flushes in the background until
// Close.
func (s *Store) Attach(shared *ccrusage.Shared) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return errors.New("ccrusage: redis store is closed")
	case s.shared != nil:
		s.mu.Unlock()
		return errors.New("ccrusage: redis store is attached to a Tracker already: create one Store per Tracker")
	}
	s.shared = shared
	s.mu.Unlock()

	// The whole read, alert claims included, waits at most Timeout. An
	// error is kept for Status, and the goroutine retries.
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	_ = s.Flush(ctx)
	cancel()

	if s.opts.FlushInterval > 0 {
		go s.loop()
	} else {
		close(s.stopped)
	}
	return nil
}

// loop flushes every FlushInterval, and early when an alert is queued.
func (s *Store) loop() {
	defer close(s.stopped)
	ticker := time.NewTicker(s.opts.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ticker.C:
		case <-s.wake:
		}
		// An error is kept for Status; the next tick retries.
		_ = s.Flush(s.ctx)
	}
}

// Close stops the background goroutine and flushes what is left, waiting
// at most Options.Timeout per round trip, and returns the error of that
// flush. Calls after the first, also concurrent ones, wait for it and
// return the same error. After Close, Flush still works, but nothing
// flushes in the background and SendAlert sends at once without a claim.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		attached := s.shared != nil
		s.mu.Unlock()

		s.cancel()
		if !attached {
			return
		}
		<-s.stopped
		s.closeErr = s.Flush(context.Background())
	})
	return s.closeErr
}

// Flush exchanges counts with Redis now: it applies the changes the Tracker
// counted since the last flush, reads the totals of the current days and
// hands the other processes' share to the Tracker, and claims and sends the
// queued alerts. A batch that failed before is retried first, unchanged, so
// Flush may take two round trips after an outage, and one more when the new
// totals raise an alert. Each round trip is bounded by Options.Timeout and
// by ctx. Flush returns the first error, which Status keeps too; the
// changes stay buffered for the next flush.
func (s *Store) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	shared := s.shared
	s.mu.Unlock()
	if shared == nil {
		return errors.New("ccrusage: redis store is not attached: pass it to ccrusage.New in Config.Store")
	}

	s.collect(shared.Collect())
	for round := 0; round < maxRounds; round++ {
		if err := s.exchange(ctx, shared); err != nil {
			return err
		}
		if !s.hasWork() {
			break
		}
	}
	return nil
}

// collect merges deltas into the pending changes, dropping changes to new
// keys past MaxPending.
func (s *Store) collect(deltas []ccrusage.Delta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range deltas {
		k := taskKey{provider: d.Provider, task: d.Task, date: d.Date}
		if c, ok := s.pending[k]; ok {
			c.counts = addCounts(c.counts, d.Counts)
			if isZero(c.counts) {
				// Changes that cancel out leave nothing to apply.
				delete(s.pending, k)
			} else {
				s.pending[k] = c
			}
			continue
		}
		if s.pendingLenLocked() >= s.opts.MaxPending {
			s.dropped++
			continue
		}
		s.pending[k] = change{dayEnd: d.DayEnd, counts: d.Counts}
	}
}

func (s *Store) pendingLenLocked() int {
	n := len(s.pending)
	if s.inflight != nil {
		n += len(s.inflight.changes)
	}
	return n
}

// hasWork reports whether changes or alerts wait for a batch.
func (s *Store) hasWork() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight != nil || len(s.pending) > 0 || len(s.alerts) > 0
}

// exchange runs the flush script once, on the batch that failed before or
// else on a new batch of the pending changes and queued alerts.
func (s *Store) exchange(ctx context.Context, shared *ccrusage.Shared) error {
	now := shared.Now()
	s.mu.Lock()
	b := s.inflight
	if b == nil {
		b = s.nextBatchLocked()
	}
	keys, args := scriptArgs(s.keys, s.opts.Grace, b, s.lastFlushKey, now)
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	res, err := flushScript.Run(ctx, s.client, keys, args...).Result()
	cancel()
	var reply flushReply
	if err == nil {
		reply, err = parseReply(res, len(b.claims))
	}
	if err != nil {
		return s.failed(err)
	}
	return s.succeeded(shared, b, reply, now)
}

// nextBatchLocked moves the pending changes and queued alerts into a new
// batch, which becomes the inflight batch unless it is empty.
func (s *Store) nextBatchLocked() *batch {
	if len(s.pending) == 0 && len(s.alerts) == 0 {
		return &batch{}
	}
	s.seq++
	b := &batch{
		id:      fmt.Sprintf("%s:%s:%d", s.opts.InstanceID, s.run, s.seq),
		changes: s.pending,
		claims:  s.alerts,
	}
	s.pending = map[taskKey]change{}
	s.alerts = nil
	s.inflight = b
	return b
}

// failed records a failed flush. Once SendUnclaimedAfter flushes in a row
// have failed, it sends the alerts waiting for a claim without one.
func (s *Store) failed(err error) error {
	s.mu.Lock()
	s.failures++
	s.available = false
	s.lastError = err.Error()
	var unclaimed []*claim
	if s.failures >= s.opts.SendUnclaimedAfter {
		unclaimed = s.takeUnsentLocked()
	}
	s.mu.Unlock()

	// Alerts go out after the lock is released: a sink may call back into
	// the Tracker, and so into SendAlert.
	for _, c := range unclaimed {
		c.send(c.alert)
	}
	return fmt.Errorf("ccrusage: flushing counts to redis failed: %w", err)
}

// takeUnsentLocked marks the alerts not yet sent as sent without a claim,
// and returns them. They stay queued, to be claimed by the next flush that
// succeeds.
func (s *Store) takeUnsentLocked() []*claim {
	var unsent []*claim
	queues := [][]*claim{s.alerts}
	if s.inflight != nil {
		queues = append(queues, s.inflight.claims)
	}
	for _, q := range queues {
		for _, c := range q {
			if !c.sentUnclaimed {
				c.sentUnclaimed = true
				s.unclaimed++
				unsent = append(unsent, c)
			}
		}
	}
	return unsent
}

// succeeded records an acknowledged batch, hands the other processes'
// counts to the Tracker and sends the alerts whose claims were won.
func (s *Store) succeeded(shared *ccrusage.Shared, b *batch, reply flushReply, now time.Time) error {
	s.mu.Lock()
	if b.id != "" {
		for k, c := range b.changes {
			a := s.applied[k]
			a.dayEnd = c.dayEnd
			a.counts = addCounts(a.counts, c.counts)
			s.applied[k] = a
		}
		s.lastFlushKey = s.keys.flush(b.id)
		s.inflight = nil
	}
	s.failures = 0
	s.available = true
	s.lastError = ""
	s.lastSync = now
	var won []*claim
	for i, c := range b.claims {
		if reply.claims[i] && !c.sentUnclaimed {
			won = append(won, c)
		}
	}
	others := s.othersLocked(reply.totals, now)
	s.mu.Unlock()

	// Calls into the Tracker and the sink run after the lock is released,
	// because both can lead back into SendAlert.
	for _, c := range won {
		c.send(c.alert)
	}
	if err := shared.SetOthers(others); err != nil {
		return fmt.Errorf("ccrusage: reading counts from redis: %w", err)
	}
	return nil
}

// othersLocked returns the counts of the other processes: the totals minus
// what this Store applied. It also deletes the applied changes of days
// whose keys have expired.
func (s *Store) othersLocked(totals map[taskKey]ccrusage.Counts, now time.Time) []ccrusage.Others {
	others := make([]ccrusage.Others, 0, len(totals))
	for k, total := range totals {
		others = append(others, ccrusage.Others{
			Provider: k.provider,
			Task:     k.task,
			Date:     k.date,
			Counts:   othersCounts(total, s.applied[k].counts),
		})
	}
	for k, a := range s.applied {
		if a.dayEnd.Add(s.opts.Grace).Before(now) {
			delete(s.applied, k)
		}
	}
	return others
}

// SendAlert queues a for its claim in Redis and returns at once. The
// background goroutine, woken early, claims it with the next flush and
// calls send if this Store won the claim among all Stores on the Prefix.
// With a negative FlushInterval, the claim waits for the next Flush.
//
// Alerts wait while Redis cannot be reached. Once SendUnclaimedAfter
// flushes in a row have failed, they are sent without a claim and counted
// in StoreStatus.UnclaimedAlerts, because other processes may send them
// too. The next flush that succeeds still claims them, so that a later
// process does not send them again.
//
// Alerts other than quota alerts are sent at once. So are alerts past a
// queue of 1024 and alerts after Close, which count as unclaimed.
//
// send runs on the goroutine of the flush that won the claim, during that
// flush, so the AlertSink behind it must not call Flush or Close.
func (s *Store) SendAlert(a ccrusage.Alert, send func(ccrusage.Alert)) {
	if a.Kind != ccrusage.AlertQuota || a.Provider == "" {
		send(a)
		return
	}
	s.mu.Lock()
	if s.closed || len(s.alerts) >= maxQueuedAlerts {
		s.unclaimed++
		s.mu.Unlock()
		send(a)
		return
	}
	c := &claim{alert: a, send: send}
	if s.failures >= s.opts.SendUnclaimedAfter {
		// Redis has been unreachable long enough: send now, claim later.
		c.sentUnclaimed = true
		s.unclaimed++
	}
	s.alerts = append(s.alerts, c)
	s.mu.Unlock()

	if c.sentUnclaimed {
		send(a)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Status reports the Store's state: Available is false and Approximate true
// from a failed flush until the next one succeeds, and before the first.
func (s *Store) Status() ccrusage.StoreStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ccrusage.StoreStatus{
		Name:            "redis",
		Persistent:      true,
		Available:       s.available,
		Approximate:     !s.available,
		LastError:       s.lastError,
		LastSync:        s.lastSync,
		Pending:         int64(s.pendingLenLocked()),
		Dropped:         s.dropped,
		UnclaimedAlerts: s.unclaimed,
	}
}
