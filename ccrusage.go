// Package ccrusage tracks the daily usage of LLM providers behind
// claude-code-router (CCR), inline on every request, and raises alerts as
// each provider nears its daily limits.
//
// A Tracker counts requests per provider and task type (the CCR route:
// default, background, think, longContext, webSearch, image), tokens by
// kind, failures and fallbacks. A service records each request before
// sending it, with Tracker.Begin and an estimate, and settles it with the
// actual usage from the response through the returned Request; Tracker.Record
// does both at once when the usage is already known. Tracker.Status reports,
// without changing anything, how close a provider is to its limits, so a
// caller can choose another route before sending.
//
// Each provider has daily request and token limits. EvaluateQuota turns
// usage and a limit into a ratio and a Level: INFO, WARNING from 80 % and
// CRITICAL from 95 % by default (see Thresholds). Every change of level is
// sent once, as an Alert, to the AlertSink the caller configures; SlogSink
// writes them to a *slog.Logger.
//
// A provider's day starts at calendar midnight in its own time zone. The
// Tracker derives the day from its Clock on every call, with no timer and
// no goroutine, so tests drive it across midnight with a ManualClock.
//
// A Tracker is safe for concurrent use by multiple goroutines. Recording
// takes no lock unless the call starts a new day or changes a level.
package ccrusage

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxNameLength is the longest provider or task name a Tracker accepts, in
// bytes.
const MaxNameLength = 128

// maxTasksBound is the largest Config.MaxTasks that New accepts.
const maxTasksBound = 4096

// ErrInvalidName is returned, wrapped with the offending name, when a
// provider name is empty, or a provider or task name is longer than
// MaxNameLength, is not valid UTF-8, contains a control character, or
// starts or ends with white space. Names are otherwise compared byte for
// byte: "Gemini" and "gemini" are two providers.
var ErrInvalidName = errors.New("ccrusage: invalid name")

// Config configures a Tracker. The zero value is valid: real clock, no
// alerts, default thresholds, days in UTC, no limits.
type Config struct {
	// Clock is read once per call. Nil means the system clock.
	Clock Clock
	// Sink receives alerts. Nil discards them.
	Sink AlertSink
	// Thresholds sets the WARNING and CRITICAL fractions; zero fields mean
	// the defaults.
	Thresholds Thresholds
	// Location is the time zone of the days of providers that do not set
	// their own. Nil means UTC; the host's local zone is never used
	// implicitly.
	Location *time.Location
	// Providers configures providers up front: their zones and limits.
	// Providers not listed here are tracked on first use, in Location and
	// without limits.
	Providers []ProviderConfig
	// MaxProviders bounds the number of distinct provider names, configured
	// ones included; later names are counted under OverflowName. Zero means
	// DefaultMaxProviders.
	MaxProviders int
	// MaxTasks bounds the number of distinct task names; later names are
	// counted under OverflowName. Zero means DefaultMaxTasks. New rejects
	// values above 4096, because each provider's day allocates 16 bytes per
	// task up front.
	MaxTasks int
	// Store shares counts and alert claims with other processes. Nil keeps
	// them in this process's memory only.
	Store Store
}

// ProviderConfig configures one provider.
type ProviderConfig struct {
	// Name is the provider's name as requests are recorded under it.
	Name string
	// Location is the time zone whose calendar days the provider's limits
	// reset on, such as America/Los_Angeles for Gemini's free tier. Nil means
	// Config.Location.
	Location *time.Location
	// Limits are the daily limits; zero fields mean unlimited.
	Limits Limits
}

// Tracker counts usage per provider and task type per day and evaluates
// each provider's daily limits. Create one with New.
type Tracker struct {
	clock     Clock
	realTime  bool // true when clock is realClock, so Tracker.now calls time.Now itself
	sink      AlertSink
	ppm       thresholdsPPM
	th        Thresholds // with defaults filled in
	loc       *time.Location
	maxProv   int
	maxTasks  int
	started   time.Time
	store     Store
	requests  sync.Pool // of *requestState
	taskSlots int       // maxTasks plus one for OverflowName

	// providers maps names to state and tasks maps task names to indexes
	// into each day's counters. Both are copied on write under mu and read
	// without it.
	providers atomic.Pointer[nameIndex[*provider]]
	tasks     atomic.Pointer[nameIndex[int]]

	mu        sync.Mutex // guards adding providers and tasks, and taskNames
	taskNames []string   // task names by index

	invalidInputs atomic.Int64
	sinkPanics    atomic.Int64
	lateUsage     atomic.Int64
}

// New returns a Tracker configured by cfg. It returns an error naming the
// field and value when a threshold is invalid (see Thresholds), a bound or
// a limit is negative, MaxTasks is above 4096, or a provider is listed
// twice, unnamed or past MaxProviders. New starts no goroutine.
func New(cfg Config) (*Tracker, error) {
	ppm, err := cfg.Thresholds.ppm()
	if err != nil {
		return nil, err
	}
	if cfg.MaxProviders < 0 {
		return nil, fmt.Errorf("ccrusage: invalid MaxProviders %d: must not be negative", cfg.MaxProviders)
	}
	if cfg.MaxTasks < 0 || cfg.MaxTasks > maxTasksBound {
		return nil, fmt.Errorf("ccrusage: invalid MaxTasks %d: want 0 (the default %d) to %d", cfg.MaxTasks, DefaultMaxTasks, maxTasksBound)
	}

	tr := &Tracker{
		clock:    cfg.Clock,
		sink:     cfg.Sink,
		ppm:      ppm,
		th:       cfg.Thresholds.withDefaults(),
		loc:      cfg.Location,
		maxProv:  cfg.MaxProviders,
		maxTasks: cfg.MaxTasks,
		store:    cfg.Store,
	}
	if tr.store == nil {
		tr.store = memoryStore{}
	}
	if tr.clock == nil {
		tr.clock = realClock{}
		tr.realTime = true
	}
	if tr.loc == nil {
		tr.loc = time.UTC
	}
	if tr.maxProv == 0 {
		tr.maxProv = DefaultMaxProviders
	}
	if tr.maxTasks == 0 {
		tr.maxTasks = DefaultMaxTasks
	}
	tr.taskSlots = tr.maxTasks + 1
	tr.requests.New = func() any { return &requestState{tr: tr} }
	now := tr.now()
	tr.started = now

	providers := make(map[string]*provider, len(cfg.Providers))
	for i, pc := range cfg.Providers {
		if err := checkName("provider", pc.Name); err != nil {
			return nil, fmt.Errorf("%w (Providers[%d])", err, i)
		}
		if _, dup := providers[pc.Name]; dup {
			return nil, fmt.Errorf("ccrusage: provider %q is configured twice", pc.Name)
		}
		if pc.Name == OverflowName {
			return nil, fmt.Errorf("ccrusage: provider name %q is reserved for names past MaxProviders", pc.Name)
		}
		if len(providers) == tr.maxProv {
			return nil, fmt.Errorf("ccrusage: %d providers configured, more than MaxProviders %d", len(cfg.Providers), tr.maxProv)
		}
		if err := pc.Limits.validate(pc.Name); err != nil {
			return nil, err
		}
		p := tr.newProvider(pc.Name, pc.Location, now)
		p.limits = pc.Limits
		p.setNextLocked(p.today.Load())
		providers[pc.Name] = p
	}
	tr.providers.Store(newNameIndex(providers))
	tr.tasks.Store(newNameIndex(map[string]int{}))
	if err := tr.store.Attach(&Shared{tr: tr, collected: map[deltaKey]Counts{}}); err != nil {
		return nil, fmt.Errorf("ccrusage: attaching the store failed: %w", err)
	}
	return tr, nil
}

func (l Limits) validate(name string) error {
	if l.Requests < 0 {
		return fmt.Errorf("ccrusage: invalid request limit %d for provider %q: must not be negative (0 means unlimited)", l.Requests, name)
	}
	if l.Tokens < 0 {
		return fmt.Errorf("ccrusage: invalid token limit %d for provider %q: must not be negative (0 means unlimited)", l.Tokens, name)
	}
	return nil
}

// checkName validates a provider or task name.
func checkName(kind, name string) error {
	if name == "" && kind == "provider" {
		return fmt.Errorf("%w: provider name %q is empty", ErrInvalidName, name)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: %s name %.32q... is %d bytes, longer than %d", ErrInvalidName, kind, name, len(name), MaxNameLength)
	}
	// Names end up as JSON keys and in one-line alert messages, so they
	// must be valid UTF-8 without control characters.
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s name %q is not valid UTF-8", ErrInvalidName, kind, name)
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%w: %s name %q contains a control character at byte %d", ErrInvalidName, kind, name, i)
	}
	// Names are compared byte for byte, so " gemini" would silently be
	// another provider than "gemini".
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("%w: %s name %q starts or ends with white space", ErrInvalidName, kind, name)
	}
	return nil
}

func (tr *Tracker) newProvider(name string, loc *time.Location, now time.Time) *provider {
	if loc == nil {
		loc = tr.loc
	}
	p := &provider{name: name, loc: loc, ppm: tr.ppm, th: tr.th, taskSlots: tr.taskSlots}
	p.today.Store(newDay(DateOf(now, loc), loc, tr.taskSlots))
	return p
}

// provider returns the state of name, creating it on first use. Past
// MaxProviders, new names map to OverflowName.
func (tr *Tracker) provider(name string, now time.Time) (*provider, error) {
	if p, ok := tr.providers.Load().get(name); ok {
		return p, nil
	}
	if err := checkName("provider", name); err != nil {
		return nil, err
	}
	return tr.validProvider(name, now), nil
}

// validProvider is provider for a name that checkName accepts.
func (tr *Tracker) validProvider(name string, now time.Time) *provider {
	if p, ok := tr.providers.Load().get(name); ok {
		return p
	}

	tr.mu.Lock()
	defer tr.mu.Unlock()
	old := tr.providers.Load()
	if p, ok := old.m[name]; ok {
		return p
	}
	// A caller may record under OverflowName itself, so its presence does
	// not mean the bound is reached.
	if len(old.m) >= tr.maxProv {
		name = OverflowName
		if p, ok := old.m[name]; ok {
			return p
		}
	}
	// Copy the name: a caller's string may be a slice of a large buffer,
	// such as a request body, which the tracker must not keep alive.
	name = strings.Clone(name)
	p := tr.newProvider(name, nil, now)
	tr.providers.Store(old.with(name, p))
	return p
}

// task returns the index of a task name, adding it on first use. An empty
// name means TaskDefault. Past MaxTasks, new names map to OverflowName.
func (tr *Tracker) task(name string) (int, error) {
	if name == "" {
		name = TaskDefault
	}
	if i, ok := tr.tasks.Load().get(name); ok {
		return i, nil
	}
	if err := checkName("task", name); err != nil {
		return 0, err
	}

	tr.mu.Lock()
	defer tr.mu.Unlock()
	old := tr.tasks.Load()
	if i, ok := old.m[name]; ok {
		return i, nil
	}
	if len(tr.taskNames) >= tr.maxTasks {
		name = OverflowName
		if i, ok := old.m[name]; ok {
			return i, nil
		}
	}
	i := len(tr.taskNames)
	name = strings.Clone(name) // as in provider, keep no caller's buffer alive
	tr.taskNames = append(tr.taskNames, name)
	tr.tasks.Store(old.with(name, i))
	return i, nil
}

// Record counts one served request of provider for task with its actual
// usage, on the day of the current time in the provider's zone. It is Begin
// and Request.Finish in one call, for callers that learn the usage and the
// request together. An empty task means TaskDefault. Record returns an error
// wrapping ErrInvalidName, and records nothing, when provider is empty or a
// name is invalid (see ErrInvalidName). Negative token counts are recorded as
// zero and counted in Snapshot.InvalidInputs.
func (tr *Tracker) Record(provider, task string, u Usage) error {
	now := tr.now()
	// The lookups of resolve, repeated here for the usual case of two known
	// names: that saves a call on every request.
	if task == "" {
		task = TaskDefault
	}
	ti, tok := tr.tasks.Load().get(task)
	p, pok := tr.providers.Load().get(provider)
	if !tok || !pok {
		var err error
		if p, ti, err = tr.addNames(provider, task, now); err != nil {
			return err
		}
	}
	tr.addServed(p, nil, ti, now, u)
	return nil
}

// resolve returns the state of provider and the index of task.
func (tr *Tracker) resolve(provider, task string, now time.Time) (*provider, int, error) {
	// Both names are usually in the maps already. Look them up here, and
	// call task and provider, which add missing names, only when one is
	// missing: that saves two calls.
	if task == "" {
		task = TaskDefault
	}
	ti, ok := tr.tasks.Load().get(task)
	p, pok := tr.providers.Load().get(provider)
	if ok && pok {
		return p, ti, nil
	}
	return tr.addNames(provider, task, now)
}

// addNames is resolve for names of which one or both may be new: it adds
// them, or returns an error wrapping ErrInvalidName. task must not be
// empty.
func (tr *Tracker) addNames(provider, task string, now time.Time) (*provider, int, error) {
	// Check the provider name before adding the task name, so that a
	// rejected call takes none of the MaxTasks slots.
	if err := checkName("provider", provider); err != nil {
		return nil, 0, err
	}
	ti, err := tr.task(task)
	if err != nil {
		return nil, 0, err
	}
	p, err := tr.provider(provider, now)
	if err != nil {
		return nil, 0, err
	}
	return p, ti, nil
}

// Handle is a pre-resolved (provider, task) pair. Recording through a Handle
// skips the name lookups of Tracker.Record. The zero Handle is not usable,
// and its methods panic: get one from Tracker.Handle. A Handle is safe for concurrent use and stays
// valid for the Tracker's lifetime.
type Handle struct {
	tr   *Tracker
	p    *provider
	task int
}

// Handle returns the Handle for provider and task, adding the names as
// Record would. It fails as Record does on invalid names.
func (tr *Tracker) Handle(provider, task string) (Handle, error) {
	p, ti, err := tr.resolve(provider, task, tr.now())
	if err != nil {
		return Handle{}, err
	}
	return Handle{tr: tr, p: p, task: ti}, nil
}

// Record counts one served request with its actual usage, as
// Tracker.Record does.
func (h Handle) Record(u Usage) {
	now := h.tr.now()
	h.tr.addServed(h.p, nil, h.task, now, u)
}

// addServed counts one served request with usage u on day d of p, or on
// p's day at now if d is nil.
func (tr *Tracker) addServed(p *provider, d *day, task int, now time.Time, u Usage) {
	u, invalid := u.clamp()
	if invalid {
		tr.invalidInputs.Add(1)
	}

	// This path runs on every request, and dayAt, day.counters and
	// counters.addUsage are too large to be inlined, so their usual cases
	// are repeated here.
	if d == nil {
		d = p.today.Load()
		if s := now.Unix(); s < d.start || s >= d.end {
			d = p.startDay(now)
		}
	}
	c := d.tasks[task].Load()
	if c == nil {
		c = d.newCounters(task)
	}
	c.requests.inc(1)
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
	requests := d.requests.inc(1)
	tokens := d.tokens.inc(u.Total())
	if requests >= d.nextRequests.Load() || tokens >= d.nextTokens.Load() {
		tr.evaluate(p, d, now)
	}
}

// evaluate checks d's level after a change of its counts and sends the
// alert it calls for.
func (tr *Tracker) evaluate(p *provider, d *day, now time.Time) {
	p.mu.Lock()
	a, ok := p.evaluateLocked(d, now)
	p.mu.Unlock()
	if ok {
		tr.send(a)
	}
}

// send hands a to the store, which delivers it to the sink if this process
// wins the claim. It is called outside every lock.
func (tr *Tracker) send(a Alert) {
	if tr.sink == nil {
		return
	}
	tr.store.SendAlert(a, tr.deliver)
}

// deliver calls the sink, recovering and counting a panic.
func (tr *Tracker) deliver(a Alert) {
	defer func() {
		if recover() != nil {
			tr.sinkPanics.Add(1)
		}
	}()
	tr.sink.Send(a)
}

// SetLimits replaces provider's daily limits, effective at once for the
// current day. Raising a limit that brings the provider back below the
// warning threshold sends one INFO alert. Lowering one past a threshold not
// yet announced today sends that alert. It returns an error naming the value
// when a limit is negative, the name is invalid, or the name is new and past
// MaxProviders, so that its limits would apply to OverflowName.
func (tr *Tracker) SetLimits(provider string, l Limits) error {
	if err := l.validate(provider); err != nil {
		return err
	}
	now := tr.now()
	p, err := tr.provider(provider, now)
	if err != nil {
		return err
	}
	if p.name != provider {
		return fmt.Errorf("ccrusage: cannot set limits of provider %q: past MaxProviders %d, its requests are counted under %q", provider, tr.maxProv, OverflowName)
	}
	p.dayAt(now)

	// Evaluate the current day as it is under the lock: a call at a later
	// time may have started a new day since dayAt returned, and that day's
	// bars, set from the old limits, must be set again.
	p.mu.Lock()
	p.limits = l
	a, ok := p.evaluateLocked(p.today.Load(), now)
	p.mu.Unlock()
	if ok {
		tr.send(a)
	}
	return nil
}
