package ccrusage

import (
	"sort"
	"time"
)

// Status is one provider's standing against its daily limits at one moment.
type Status struct {
	// Provider is the provider's name.
	Provider string
	// Date is the provider's current day in its zone.
	Date Date
	// Zone is the name of the provider's time zone, such as "UTC".
	Zone string
	// DayStart is the first instant of Date in the provider's zone, and
	// ResetsAt the first instant of the next day, when usage starts again
	// from zero.
	DayStart time.Time
	ResetsAt time.Time
	// Requests and Tokens are the daily quotas; use Quota.Remaining for the
	// headroom left.
	Requests Quota
	Tokens   Quota
	// Level is the higher of Requests.Level and Tokens.Level, and Ratio the
	// higher of their ratios.
	Level Level
	Ratio float64
}

// Status returns provider's standing for the current day: usage, limits,
// level and when its day resets. It changes no count and sends no alert, so
// a caller can check the headroom before choosing a route. A provider never
// recorded nor configured has zero usage and no limits in the Tracker's
// zone. So has a name past MaxProviders, because its records count under
// OverflowName. It returns an error wrapping ErrInvalidName for an invalid
// name.
func (tr *Tracker) Status(provider string) (Status, error) {
	if err := checkName("provider", provider); err != nil {
		return Status{}, err
	}
	now := tr.now()
	p, ok := tr.providers.Load().get(provider)
	if !ok {
		date := DateOf(now, tr.loc)
		return Status{
			Provider: provider,
			Date:     date,
			Zone:     tr.loc.String(),
			DayStart: date.Start(tr.loc),
			ResetsAt: date.AddDays(1).Start(tr.loc),
		}, nil
	}

	d := p.dayAt(now)
	p.mu.Lock()
	requests, tokens := p.quotasLocked(d)
	p.mu.Unlock()
	return Status{
		Provider: provider,
		Date:     d.date,
		Zone:     p.loc.String(),
		DayStart: time.Unix(d.start, 0).In(p.loc),
		ResetsAt: time.Unix(d.end, 0).In(p.loc),
		Requests: requests,
		Tokens:   tokens,
		Level:    max(requests.Level, tokens.Level),
		Ratio:    max(requests.Ratio, tokens.Ratio),
	}, nil
}

// Snapshot is everything a Tracker counts, aggregated at one moment, ready
// for encoding/json: field names are snake_case, ratios of unlimited quotas
// are null rather than NaN, and every count is an exact integer.
type Snapshot struct {
	// Time is the Tracker's clock reading for the snapshot.
	Time time.Time `json:"time"`
	// Started is when the Tracker was created.
	Started time.Time `json:"started"`
	// Persistent reports whether the counts survive a restart of the
	// process. When false, zero usage after a restart means "not known",
	// not "none".
	Persistent bool `json:"persistent"`
	// Approximate reports whether the counts may be incomplete because the
	// Store shared by several processes could not be reached.
	Approximate bool `json:"approximate"`
	// Store is the state of the Tracker's Store.
	Store StoreStatus `json:"store"`
	// Thresholds are the WARNING and CRITICAL fractions in force.
	Thresholds Thresholds `json:"thresholds"`
	// Providers are sorted by name.
	Providers []ProviderSnapshot `json:"providers"`
	// Totals sums every provider's current day, and Yesterday every
	// provider's previous day, each day in its provider's zone.
	Totals    Counts `json:"totals"`
	Yesterday Counts `json:"yesterday"`
	// InvalidInputs counts calls whose negative token counts or estimates
	// were recorded as zero.
	InvalidInputs int64 `json:"invalid_inputs"`
	// UnknownUsage counts today's served requests whose usage was never
	// reported, over all providers (Totals.UnknownUsage).
	UnknownUsage int64 `json:"unknown_usage"`
	// LateUsage counts settlements that arrived for a day no longer kept.
	LateUsage int64 `json:"late_usage"`
	// SinkPanics counts alerts whose AlertSink panicked.
	SinkPanics int64 `json:"sink_panics"`
}

// ProviderSnapshot is one provider's current day. Its embedded Counts
// appear as top-level JSON fields.
type ProviderSnapshot struct {
	// Name is the provider's name.
	Name string `json:"name"`
	// Date, Zone, DayStart and ResetsAt describe the current day, as in
	// Status.
	Date     Date      `json:"date"`
	Zone     string    `json:"zone"`
	DayStart time.Time `json:"day_start"`
	ResetsAt time.Time `json:"resets_at"`
	Counts
	// Limits are the daily limits; 0 means unlimited.
	Limits Limits `json:"limits"`
	// Ratio is the higher of the two usage ratios, null when both limits
	// are unlimited.
	Ratio *float64 `json:"ratio"`
	// Percent is Ratio formatted as in Quota.Percent, "unlimited" when
	// Ratio is null.
	Percent string `json:"percent"`
	// Level is the level the current counts give.
	Level Level `json:"level"`
	// Remaining is the headroom left under each limit today.
	Remaining Remaining `json:"remaining"`
	// Tasks holds the counts of each task type seen today.
	Tasks map[string]Counts `json:"tasks"`
	// Yesterday holds the previous day's counts, or is null if the
	// provider was not tracked on the previous calendar day. In a zone that
	// skipped a whole day, as Pacific/Apia skipped 2011-12-30, the previous
	// day is the last one that existed.
	Yesterday *DayCounts `json:"yesterday"`
}

// Remaining is the headroom left under each daily limit. A nil field means
// unlimited.
type Remaining struct {
	Requests *int64 `json:"requests"`
	Tokens   *int64 `json:"tokens"`
}

// DayCounts are a provider's counts on one earlier day.
type DayCounts struct {
	Date Date `json:"date"`
	Counts
	Tasks map[string]Counts `json:"tasks"`
}

// Snapshot returns the current counts of every provider. It changes no
// count and sends no alert. Each counter is read once without stopping
// records, so a record that runs at the same time may be partly included.
// Within the snapshot, totals always equal the sums of their parts.
func (tr *Tracker) Snapshot() Snapshot {
	now := tr.now()
	tr.mu.Lock()
	taskNames := append([]string(nil), tr.taskNames...)
	tr.mu.Unlock()

	store := tr.store.Status()
	providers := tr.providers.Load().m
	names := make([]string, 0, len(providers))
	for name := range providers {
		names = append(names, name)
	}
	sort.Strings(names)

	s := Snapshot{
		Time:          now,
		Started:       tr.started,
		Persistent:    store.Persistent,
		Approximate:   store.Approximate,
		Store:         store,
		Thresholds:    tr.th,
		Providers:     make([]ProviderSnapshot, 0, len(names)),
		InvalidInputs: tr.invalidInputs.Load(),
		LateUsage:     tr.lateUsage.Load(),
		SinkPanics:    tr.sinkPanics.Load(),
	}
	for _, name := range names {
		ps := tr.providerSnapshot(providers[name], now, taskNames)
		s.Totals = s.Totals.add(ps.Counts)
		if ps.Yesterday != nil {
			s.Yesterday = s.Yesterday.add(ps.Yesterday.Counts)
		}
		s.Providers = append(s.Providers, ps)
	}
	s.UnknownUsage = s.Totals.UnknownUsage
	return s
}

func (tr *Tracker) providerSnapshot(p *provider, now time.Time, taskNames []string) ProviderSnapshot {
	d := p.dayAt(now)
	counts, tasks := d.load(taskNames)
	p.mu.Lock()
	limits := p.limits
	p.mu.Unlock()

	requests := evaluate(counts.Requests, limits.Requests, tr.ppm, tr.th)
	tokens := evaluate(counts.Tokens, limits.Tokens, tr.ppm, tr.th)
	ps := ProviderSnapshot{
		Name:     p.name,
		Date:     d.date,
		Zone:     p.loc.String(),
		DayStart: time.Unix(d.start, 0).In(p.loc),
		ResetsAt: time.Unix(d.end, 0).In(p.loc),
		Counts:   counts,
		Limits:   limits,
		Percent:  "unlimited",
		Level:    max(requests.Level, tokens.Level),
		Tasks:    tasks,
	}
	if requests.Limited() || tokens.Limited() {
		q := higher(requests, tokens)
		ps.Ratio = &q.Ratio
		ps.Percent = q.Percent()
	}
	if requests.Limited() {
		n := requests.Remaining()
		ps.Remaining.Requests = &n
	}
	if tokens.Limited() {
		n := tokens.Remaining()
		ps.Remaining.Tokens = &n
	}
	// Compare instants, not dates: the day before d.date may not exist.
	if prev := p.previous.Load(); prev != nil && prev.end == d.start {
		counts, tasks := prev.load(taskNames)
		ps.Yesterday = &DayCounts{Date: prev.date, Counts: counts, Tasks: tasks}
	}
	return ps
}

// load reads the counts of every task of d and their sum.
func (d *day) load(taskNames []string) (Counts, map[string]Counts) {
	var total Counts
	tasks := make(map[string]Counts)
	for i, name := range taskNames {
		c, others := d.tasks[i].Load(), d.others[i].Load()
		if c == nil && others == nil {
			continue
		}
		var n Counts
		if c != nil {
			n = c.load()
		}
		if others != nil {
			n = n.add(*others)
		}
		tasks[name] = n
		total = total.add(n)
	}
	return total, tasks
}

// higher returns the limited quota of the two with the higher ratio.
func higher(requests, tokens Quota) Quota {
	if !tokens.Limited() || (requests.Limited() && requests.Ratio >= tokens.Ratio) {
		return requests
	}
	return tokens
}
