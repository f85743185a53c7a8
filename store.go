package ccrusage

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Store shares a Tracker's daily counts and alert claims with the Trackers of
// other processes, so that several instances of a service count into one
// daily quota per provider and send each alert once in all. Config.Store nil
// keeps everything in this process's memory.
//
// The Tracker always counts in its own memory first, so recording never
// waits on a Store. The Store reads what this process counted through the
// Shared value it receives in Attach, applies it to the shared counts in the
// background, and writes back what the other processes counted; the
// Tracker evaluates levels on the sum.
type Store interface {
	// Attach is called once, by New, before any record. The store keeps
	// shared to collect this process's counts and to report the counts of
	// other processes. An error makes New fail.
	Attach(shared *Shared) error
	// SendAlert sends a through send, at most once, if this process wins
	// the claim for a's provider, level and date among all processes that
	// share the store. It is called outside every lock on the goroutine that
	// caused the alert, and must not wait on the network: a store may claim
	// later and call send from its own goroutine.
	SendAlert(a Alert, send func(Alert))
	// Status reports the store's state for Snapshot.
	Status() StoreStatus
}

// StoreStatus is the state of a Tracker's Store.
type StoreStatus struct {
	// Name identifies the kind of store, such as "memory" or "redis".
	Name string `json:"name"`
	// Persistent reports whether counts survive a restart of the process.
	Persistent bool `json:"persistent"`
	// Available reports whether the last exchange with the store succeeded.
	Available bool `json:"available"`
	// Approximate reports whether the totals may miss other processes'
	// counts or this process's unsent counts, as during an outage.
	Approximate bool `json:"approximate"`
	// LastError is the error of the last failed exchange, empty after a
	// success.
	LastError string `json:"last_error,omitempty"`
	// LastSync is when counts were last exchanged successfully; zero if
	// never, which JSON encodes as null.
	LastSync time.Time `json:"last_sync"`
	// Pending counts the count changes collected and not yet applied to the
	// shared counts.
	Pending int64 `json:"pending"`
	// Dropped counts the count changes discarded because the local buffer
	// was full; they are missing from the shared totals.
	Dropped int64 `json:"dropped"`
	// UnclaimedAlerts counts alerts sent without winning a claim because
	// the store could not be reached in time; another process may have
	// sent the same alert.
	UnclaimedAlerts int64 `json:"unclaimed_alerts"`
}

// MarshalJSON encodes s with a zero LastSync as null rather than as the
// year 1.
func (s StoreStatus) MarshalJSON() ([]byte, error) {
	type plain StoreStatus
	out := struct {
		plain
		LastSync *time.Time `json:"last_sync"`
	}{plain: plain(s)}
	if !s.LastSync.IsZero() {
		out.LastSync = &s.LastSync
	}
	return json.Marshal(out)
}

// Delta is the change of one provider's counts for one task on one day, as
// collected by Shared.Collect. Fields of Counts may be negative: a failed
// request leaves the served requests. Counts.Tokens is left zero; it is
// derived from the other token fields.
type Delta struct {
	Provider string
	Task     string
	// Date is the provider's calendar day in its zone, and DayEnd the first
	// instant of the next day, after which the counts are no longer today's.
	Date   Date
	DayEnd time.Time
	Counts Counts
}

// Others are the counts of one provider for one task on one day that other
// processes recorded, as a Store reports them to Shared.SetOthers.
type Others struct {
	Provider string
	Task     string
	Date     Date
	Counts   Counts
}

// Shared is a Tracker's side of a Store: it collects what this process
// counted and takes in what the others counted. It is safe for concurrent
// use.
type Shared struct {
	tr *Tracker

	mu        sync.Mutex // guards collected
	collected map[deltaKey]Counts
}

type deltaKey struct {
	provider, task string
	date           Date
}

// Now returns the Tracker's clock reading, so that a store dates its
// exchanges and picks the current days by the same clock as the counts.
func (s *Shared) Now() time.Time {
	return s.tr.now()
}

// Collect returns the changes of this process's counts since the previous
// call, per provider, task and day, for the days the Tracker keeps (each
// provider's current and previous day). A change that Collect returns is
// not returned again: the store must keep it until it is applied.
func (s *Shared) Collect() []Delta {
	tr := s.tr
	tr.mu.Lock()
	taskNames := append([]string(nil), tr.taskNames...)
	tr.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	var deltas []Delta
	for _, p := range tr.providers.Load().m {
		for _, d := range []*day{p.previous.Load(), p.today.Load()} {
			if d == nil {
				continue
			}
			for i, task := range taskNames {
				c := d.tasks[i].Load()
				if c == nil {
					continue
				}
				now := c.load()
				key := deltaKey{provider: p.name, task: task, date: d.date}
				delta := now.sub(s.collected[key])
				if delta == (Counts{}) {
					continue
				}
				s.collected[key] = now
				deltas = append(deltas, Delta{
					Provider: p.name,
					Task:     task,
					Date:     d.date,
					DayEnd:   time.Unix(d.end, 0).In(p.loc),
					Counts:   delta,
				})
			}
		}
	}
	s.forgetLocked()
	return deltas
}

// forgetLocked drops collected values of days no provider keeps any more.
func (s *Shared) forgetLocked() {
	providers := s.tr.providers.Load().m
	for key := range s.collected {
		p, ok := providers[key.provider]
		if !ok {
			continue
		}
		if prev := p.previous.Load(); (prev == nil || prev.date != key.date) && p.today.Load().date != key.date {
			delete(s.collected, key)
		}
	}
}

// SetOthers replaces the counts that other processes recorded: each value is
// the total of all other processes for its provider, task and day. Negative
// fields count as zero, and Counts.Tokens is ignored and derived from the
// token fields. Counts for a day the provider does not keep are ignored.
// Entries whose names this Tracker counts under OverflowName are added up,
// so a call must carry all of them: a later call with only some replaces
// their sum. Levels are evaluated on the new sums, and any alert they call
// for is sent through the Store.
// It returns an error for an invalid provider name and applies the rest.
func (s *Shared) SetOthers(others []Others) error {
	tr := s.tr
	now := tr.now()
	var firstErr error

	// Add up the entries that land on the same counts first: every name
	// past MaxProviders or MaxTasks maps to OverflowName.
	type target struct {
		p    *provider
		d    *day
		task int
	}
	sums := map[target]Counts{}
	for _, o := range others {
		if checkName("provider", o.Provider) == nil && !tr.mayKeep(o.Provider, o.Date, now) {
			continue
		}
		p, ti, err := tr.resolve(o.Provider, o.Task, now)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("ccrusage: invalid counts from store: %w", err)
			}
			continue
		}
		d := p.dayAt(now)
		if d.date != o.Date {
			prev := p.previous.Load()
			if prev == nil || prev.date != o.Date {
				continue
			}
			d = prev
		}
		key := target{p: p, d: d, task: ti}
		sums[key] = sums[key].add(o.Counts.nonNegative())
	}

	changed := map[*provider]bool{}
	for key, c := range sums {
		key.p.mu.Lock()
		key.d.setOthersLocked(key.task, c)
		key.p.mu.Unlock()
		changed[key.p] = true
	}
	for p := range changed {
		p.mu.Lock()
		a, ok := p.evaluateLocked(p.today.Load(), now)
		p.mu.Unlock()
		if ok {
			tr.send(a)
		}
	}
	return firstErr
}

// mayKeep reports whether provider may keep counts for date, so that
// SetOthers adds no provider only to drop its counts. A provider added now
// keeps only the current day in the Tracker's zone. A known name, or one
// past MaxProviders that maps to OverflowName, may keep earlier days too.
func (tr *Tracker) mayKeep(provider string, date Date, now time.Time) bool {
	providers := tr.providers.Load().m
	if _, ok := providers[provider]; ok || len(providers) >= tr.maxProv {
		return true
	}
	return date == DateOf(now, tr.loc)
}

// memoryStore keeps everything in the Tracker's memory: every alert is this
// process's to send, and a restart starts from zero.
type memoryStore struct{}

func (memoryStore) Attach(*Shared) error                { return nil }
func (memoryStore) SendAlert(a Alert, send func(Alert)) { send(a) }
func (memoryStore) Status() StoreStatus {
	return StoreStatus{Name: "memory", Available: true}
}

var _ Store = memoryStore{}
