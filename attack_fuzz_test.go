package ccrusage

import (
	"encoding/json"
	"errors"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzRecordSequence drives a Tracker with a sequence of calls decoded from
// the fuzz input and checks every result against refModel, a plain
// implementation of the documented behaviour: counts per provider, task and
// day, levels, and the exact sequence of alerts.
//
// Run it with: go test -run='^$' -fuzz=FuzzRecordSequence -fuzztime=3m
func FuzzRecordSequence(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 3, 0, 0, 5, 0, 0, 0, 3, 0, 0, 5, 0, 0, 0, 8})
	f.Add([]byte{1, 1, 6, 0, 3, 200, 4, 0, 1, 50, 3, 0, 1, 9, 9, 9, 9, 0, 2, 3, 0, 0, 1, 8})
	random := rand.New(rand.NewSource(1))
	for i := 0; i < 24; i++ {
		seed := make([]byte, 64+random.Intn(400))
		random.Read(seed)
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runSequence(t, data)
	})
}

// fuzzBytes reads the fuzz input one byte at a time, and zeros past its
// end.
type fuzzBytes struct {
	data []byte
}

func (b *fuzzBytes) next() int {
	if len(b.data) == 0 {
		return 0
	}
	v := b.data[0]
	b.data = b.data[1:]
	return int(v)
}

func (b *fuzzBytes) done() bool { return len(b.data) == 0 }

// Names the sequence draws from. The empty provider name is invalid. With
// MaxProviders 7, the five configured providers and the first two new
// names fill the bound, and later new names count under OverflowName.
var (
	fuzzProviders = []string{"utc", "la", "ktm", "scl", "amm", "dyn1", "dyn2", OverflowName, "dyn3", ""}
	fuzzTasks     = []string{TaskDefault, TaskThink, TaskBackground, "", OverflowName}
	fuzzZones     = map[string]*time.Location{
		"utc": time.UTC,
		"la":  mustLoad("America/Los_Angeles"),
		"ktm": mustLoad("Asia/Kathmandu"),
		"scl": mustLoad("America/Santiago"),
		"amm": mustLoad("Asia/Amman"),
	}
	fuzzDefaultZone = mustLoad("Australia/Lord_Howe")
	fuzzThresholds  = []Thresholds{
		{},
		{Warning: 1e-6, Critical: 1},
		{Warning: 0.999999, Critical: 1},
		{Warning: 0.5, Critical: 0.75},
		{Warning: 0.333333, Critical: 0.666667},
	}
	// fuzzStarts are an ordinary day, then instants a few hours before a
	// skipped midnight (Santiago), a repeated midnight (Amman), and changes
	// of daylight saving time in Los Angeles and on Lord Howe Island.
	fuzzStarts = []time.Time{
		time.Date(2026, time.October, 14, 12, 0, 0, 0, time.UTC),
		time.Date(2025, time.September, 6, 20, 0, 0, 0, mustLoad("America/Santiago")),
		time.Date(2021, time.October, 28, 18, 0, 0, 0, time.UTC),
		time.Date(2026, time.March, 7, 22, 0, 0, 0, mustLoad("America/Los_Angeles")),
		time.Date(2026, time.April, 4, 12, 0, 0, 0, time.UTC),
	}
)

const (
	fuzzMaxProviders = 7
	fuzzMaxTasks     = 3
)

// runSequence runs the calls that data encodes on a Tracker and on a
// refModel and fails t at the first difference.
func runSequence(t *testing.T, data []byte) {
	in := &fuzzBytes{data: data}
	th := fuzzThresholds[in.next()%len(fuzzThresholds)]
	start := fuzzStarts[in.next()%len(fuzzStarts)]

	model := newRefModel(th)
	var configured []ProviderConfig
	for _, name := range fuzzProviders[:5] {
		limits := Limits{Requests: int64(in.next() % 12), Tokens: int64(in.next()%8) * 500}
		configured = append(configured, ProviderConfig{Name: name, Location: fuzzZones[name], Limits: limits})
		model.configure(name, fuzzZones[name], limits, start)
	}
	tr, clock, log := newTracker(t, start, Config{
		Thresholds:   th,
		Location:     fuzzDefaultZone,
		Providers:    configured,
		MaxProviders: fuzzMaxProviders,
		MaxTasks:     fuzzMaxTasks,
	})

	var requests []*refRequest
	for step := 0; !in.done() && step < 400; step++ {
		op := in.next() % 11
		switch op {
		case 0:
			clock.Advance(time.Duration(1+in.next()*7) * time.Minute)
		case 1:
			clock.Advance(-time.Duration(in.next()*3) * time.Minute)
		case 2:
			clock.Advance(time.Duration(1+in.next()%3)*24*time.Hour + time.Duration(in.next())*time.Minute)
		case 3, 9:
			provider, task, u := fuzzProvider(in), fuzzTask(in), fuzzUsage(in)
			now := clock.Now()
			var err error
			if op == 3 {
				err = tr.Record(provider, task, u)
			} else {
				var h Handle
				if h, err = tr.Handle(provider, task); err == nil {
					h.Record(u)
				}
			}
			requireSameError(t, model.record(provider, task, u, now), err, "step %d: record %q %q", step, provider, task)
		case 4, 10:
			provider, task := fuzzProvider(in), fuzzTask(in)
			estimate := int64(in.next() * 13)
			if in.next()%8 == 0 {
				estimate = -estimate
			}
			now := clock.Now()
			var r Request
			var err error
			if op == 4 {
				r, err = tr.Begin(provider, task, estimate)
			} else {
				var h Handle
				if h, err = tr.Handle(provider, task); err == nil {
					r = h.Begin(estimate)
				}
			}
			ref, modelErr := model.begin(provider, task, estimate, now)
			requireSameError(t, modelErr, err, "step %d: begin %q %q", step, provider, task)
			if ref != nil {
				ref.real = r
				requests = append(requests, ref)
			}
		case 5:
			if len(requests) == 0 {
				continue
			}
			ref := requests[in.next()%len(requests)]
			settleBoth(t, step, in, model, clock, ref)
		case 6:
			provider := fuzzProvider(in)
			limits := Limits{Requests: int64(in.next() % 12), Tokens: int64(in.next()%8) * 500}
			if in.next()%16 == 0 {
				limits.Tokens = -1
			}
			now := clock.Now()
			requireSameError(t, model.setLimits(provider, limits, now), tr.SetLimits(provider, limits), "step %d: set limits of %q", step, provider)
		case 7:
			provider := fuzzProvider(in)
			now := clock.Now()
			want, modelErr := model.status(provider, now)
			got, err := tr.Status(provider)
			requireSameError(t, modelErr, err, "step %d: status of %q", step, provider)
			require.Equal(t, want, refStatusOf(got), "step %d: status of %q at %v", step, provider, now)
		case 8:
			compareSnapshot(t, step, model, tr, clock.Now())
		}
	}

	compareSnapshot(t, -1, model, tr, clock.Now())
	var alerts []refAlert
	for _, a := range log.all() {
		alerts = append(alerts, refAlert{Provider: a.Provider, Level: a.Level, Previous: a.Previous, Date: a.Date})
	}
	require.Equal(t, model.alerts, alerts, "alerts")
}

func fuzzProvider(in *fuzzBytes) string { return fuzzProviders[in.next()%len(fuzzProviders)] }

func fuzzTask(in *fuzzBytes) string { return fuzzTasks[in.next()%len(fuzzTasks)] }

// fuzzUsage decodes a usage. One in eight has a negative output count.
func fuzzUsage(in *fuzzBytes) Usage {
	u := Usage{
		InputTokens:         int64(in.next() * 37),
		OutputTokens:        int64(in.next() * 3),
		CacheReadTokens:     int64(in.next()),
		CacheCreationTokens: int64(in.next() / 2),
	}
	if flags := in.next(); flags%8 == 0 {
		u.OutputTokens = -1 - u.OutputTokens
	}
	return u
}

// settleBoth settles ref on the Tracker and on the model the same way.
func settleBoth(t *testing.T, step int, in *fuzzBytes, model *refModel, clock *ManualClock, ref *refRequest) {
	t.Helper()
	kind := in.next() % 5
	now := clock.Now()
	var err, modelErr error
	switch kind {
	case 0:
		u := fuzzUsage(in)
		err, modelErr = ref.real.Finish(u), model.finish(ref, u, now)
	case 1:
		err, modelErr = ref.real.FinishUnknown(), model.finishUnknown(ref, now)
	case 2:
		err, modelErr = ref.real.Fail(), model.fail(ref, false, now)
	case 3:
		err, modelErr = ref.real.Fallback(), model.fail(ref, true, now)
	case 4:
		provider, u := fuzzProvider(in), fuzzUsage(in)
		err, modelErr = ref.real.FinishOn(provider, u), model.finishOn(ref, provider, u, now)
	}
	requireSameError(t, modelErr, err, "step %d: settle kind %d", step, kind)
}

// requireSameError fails t unless got and want are both nil or both wrap
// the same sentinel error.
func requireSameError(t *testing.T, want, got error, msgAndArgs ...any) {
	t.Helper()
	switch {
	case want == nil:
		require.NoError(t, got, msgAndArgs...)
	case errors.Is(want, ErrInvalidName):
		require.ErrorIs(t, got, ErrInvalidName, msgAndArgs...)
	case errors.Is(want, ErrRequestDone):
		require.ErrorIs(t, got, ErrRequestDone, msgAndArgs...)
	default:
		require.Error(t, got, msgAndArgs...)
	}
}

// compareSnapshot checks tr's snapshot against the model at now.
func compareSnapshot(t *testing.T, step int, model *refModel, tr *Tracker, now time.Time) {
	t.Helper()
	s := tr.Snapshot()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.True(t, json.Valid(b))

	want := model.snapshot(now)
	got := refSnapshot{InvalidInputs: s.InvalidInputs, LateUsage: s.LateUsage}
	for _, p := range s.Providers {
		rp := refProviderSnapshot{Name: p.Name, Date: p.Date, Tasks: p.Tasks, Limits: p.Limits, Level: p.Level}
		if p.Yesterday != nil {
			rp.Yesterday = &refDayCounts{Date: p.Yesterday.Date, Tasks: p.Yesterday.Tasks}
		}
		got.Providers = append(got.Providers, rp)
	}
	require.Equal(t, want, got, "step %d: snapshot at %v", step, now)
}

// refModel is the reference: maps and plain arithmetic, no atomics, no
// pooling and no precomputed bars, so that it is easy to check against the
// README.
type refModel struct {
	warningPPM, criticalPPM int64
	loc                     *time.Location
	providers               map[string]*refProvider
	tasks                   []string
	alerts                  []refAlert
	invalid, late           int64
}

type refProvider struct {
	name            string
	loc             *time.Location
	limits          Limits
	today, previous *refDay
	reported        Level
	// recheck is set when a day begins while the last announced level is
	// above INFO: the next count change evaluates, to announce the
	// recovery.
	recheck bool
}

type refDay struct {
	date  Date
	tasks map[string]*Counts
	fired map[Level]bool
}

type refRequest struct {
	provider *refProvider
	day      *refDay
	task     string
	estimate int64
	begun    time.Time
	settled  bool
	real     Request
}

type refAlert struct {
	Provider        string
	Level, Previous Level
	Date            Date
}

type refStatus struct {
	Date                     Date
	Requests, Tokens         int64
	RequestLimit, TokenLimit int64
	Level                    Level
}

type refSnapshot struct {
	Providers     []refProviderSnapshot
	InvalidInputs int64
	LateUsage     int64
}

type refProviderSnapshot struct {
	Name      string
	Date      Date
	Tasks     map[string]Counts
	Limits    Limits
	Level     Level
	Yesterday *refDayCounts
}

type refDayCounts struct {
	Date  Date
	Tasks map[string]Counts
}

func newRefModel(th Thresholds) *refModel {
	th = th.withDefaults()
	return &refModel{
		warningPPM:  int64(th.Warning*1e6 + 0.5),
		criticalPPM: int64(th.Critical*1e6 + 0.5),
		loc:         fuzzDefaultZone,
		providers:   map[string]*refProvider{},
	}
}

func refDateIn(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{Year: y, Month: m, Day: d}
}

func newRefDay(date Date) *refDay {
	return &refDay{date: date, tasks: map[string]*Counts{}, fired: map[Level]bool{}}
}

func (m *refModel) configure(name string, loc *time.Location, limits Limits, now time.Time) {
	m.providers[name] = &refProvider{name: name, loc: loc, limits: limits, today: newRefDay(refDateIn(now, loc))}
}

// provider returns the provider that name counts under, creating it as the
// Tracker does on first use.
func (m *refModel) provider(name string, now time.Time) (*refProvider, error) {
	if name == "" {
		return nil, ErrInvalidName
	}
	if p, ok := m.providers[name]; ok {
		return p, nil
	}
	if len(m.providers) >= fuzzMaxProviders {
		name = OverflowName
		if p, ok := m.providers[name]; ok {
			return p, nil
		}
	}
	p := &refProvider{name: name, loc: m.loc}
	m.providers[name] = p
	p.today = newRefDay(refDateIn(now, m.loc))
	return p, nil
}

func (m *refModel) task(name string) string {
	if name == "" {
		name = TaskDefault
	}
	for _, known := range m.tasks {
		if known == name {
			return name
		}
	}
	if len(m.tasks) >= fuzzMaxTasks {
		name = OverflowName
		for _, known := range m.tasks {
			if known == name {
				return name
			}
		}
	}
	m.tasks = append(m.tasks, name)
	return name
}

func (m *refModel) resolve(provider, task string, now time.Time) (*refProvider, string, error) {
	if provider == "" {
		return nil, "", ErrInvalidName
	}
	task = m.task(task)
	p, err := m.provider(provider, now)
	return p, task, err
}

// dayAt returns p's day at now, starting a new one when now's date in p's
// zone is later than the current day's. A clock stepped back keeps the
// current day.
func (p *refProvider) dayAt(now time.Time) *refDay {
	date := refDateIn(now, p.loc)
	if p.today.date.Before(date) {
		p.previous = p.today
		p.today = newRefDay(date)
		p.recheck = p.reported > LevelInfo
	}
	return p.today
}

func (d *refDay) counts(task string) *Counts {
	c, ok := d.tasks[task]
	if !ok {
		c = &Counts{}
		d.tasks[task] = c
	}
	return c
}

func (d *refDay) totals() (requests, tokens int64) {
	for _, c := range d.tasks {
		requests += c.Requests
		tokens += c.InputTokens + c.OutputTokens + c.CacheReadTokens + c.CacheCreationTokens + c.EstimatedTokens
	}
	return requests, tokens
}

func (d *refDay) snapshot() map[string]Counts {
	out := map[string]Counts{}
	for name, c := range d.tasks {
		n := *c
		n.Tokens = n.InputTokens + n.OutputTokens + n.CacheReadTokens + n.CacheCreationTokens + n.EstimatedTokens
		out[name] = n
	}
	return out
}

// level computes a level by cross-multiplying: used/limit >= ppm/10^6.
func (m *refModel) level(used, limit int64) Level {
	switch {
	case limit == 0:
		return LevelInfo
	case used*1_000_000 >= limit*m.criticalPPM:
		return LevelCritical
	case used*1_000_000 >= limit*m.warningPPM:
		return LevelWarning
	}
	return LevelInfo
}

func (m *refModel) levels(p *refProvider, d *refDay) (requests, tokens Level) {
	usedRequests, usedTokens := d.totals()
	return m.level(usedRequests, p.limits.Requests), m.level(usedTokens, p.limits.Tokens)
}

// evaluate applies the alert rules to p's current day d.
func (m *refModel) evaluate(p *refProvider, d *refDay) {
	if d != p.today {
		return
	}
	requests, tokens := m.levels(p, d)
	level, previous := max(requests, tokens), p.reported
	p.recheck = false
	switch {
	case level == LevelInfo:
		if previous > LevelInfo {
			m.alerts = append(m.alerts, refAlert{p.name, LevelInfo, previous, d.date})
		}
		p.reported = LevelInfo
	case !d.fired[level]:
		m.alerts = append(m.alerts, refAlert{p.name, level, previous, d.date})
		d.fired[level] = true
		d.fired[LevelWarning] = true
		p.reported = level
	case level < previous:
		p.reported = level
	}
}

// afterChange evaluates d after a record or settlement changed its counts,
// when a level not yet announced today is reached or a new day's recovery
// is due. A settlement rechecks only the token limit, since it leaves the
// requests alone.
func (m *refModel) afterChange(p *refProvider, d *refDay, requestsChanged bool) {
	if d != p.today {
		return
	}
	due := p.recheck
	next := LevelInfo
	switch {
	case !d.fired[LevelWarning]:
		next = LevelWarning
	case !d.fired[LevelCritical]:
		next = LevelCritical
	}
	requests, tokens := m.levels(p, d)
	if next != LevelInfo && ((requestsChanged && requests >= next) || tokens >= next) {
		due = true
	}
	if due {
		m.evaluate(p, d)
	}
}

func (m *refModel) clamp(u Usage) Usage {
	if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheCreationTokens < 0 {
		m.invalid++
	}
	return Usage{max(u.InputTokens, 0), max(u.OutputTokens, 0), max(u.CacheReadTokens, 0), max(u.CacheCreationTokens, 0)}
}

func addRefUsage(c *Counts, u Usage) {
	c.InputTokens += u.InputTokens
	c.OutputTokens += u.OutputTokens
	c.CacheReadTokens += u.CacheReadTokens
	c.CacheCreationTokens += u.CacheCreationTokens
}

func (m *refModel) record(provider, task string, u Usage, now time.Time) error {
	p, task, err := m.resolve(provider, task, now)
	if err != nil {
		return err
	}
	m.served(p, p.dayAt(now), task, u)
	return nil
}

// served counts one served request on day d of p.
func (m *refModel) served(p *refProvider, d *refDay, task string, u Usage) {
	u = m.clamp(u)
	c := d.counts(task)
	c.Requests++
	addRefUsage(c, u)
	m.afterChange(p, d, true)
}

func (m *refModel) begin(provider, task string, estimate int64, now time.Time) (*refRequest, error) {
	p, task, err := m.resolve(provider, task, now)
	if err != nil {
		return nil, err
	}
	if estimate < 0 {
		m.invalid++
		estimate = 0
	}
	d := p.dayAt(now)
	c := d.counts(task)
	c.Requests++
	c.EstimatedTokens += estimate
	m.afterChange(p, d, true)
	return &refRequest{provider: p, day: d, task: task, estimate: estimate, begun: now}, nil
}

// settle marks r settled, and counts it as late usage when its day is no
// longer kept at now.
func (m *refModel) settle(r *refRequest, now time.Time) {
	r.settled = true
	today := r.provider.dayAt(now)
	if r.day != today && (r.day != r.provider.previous || r.day.date.AddDays(1) != today.date) {
		m.late++
	}
}

func (m *refModel) finish(r *refRequest, u Usage, now time.Time) error {
	if r.settled {
		return ErrRequestDone
	}
	m.settle(r, now)
	u = m.clamp(u)
	c := r.day.counts(r.task)
	c.EstimatedTokens -= r.estimate
	addRefUsage(c, u)
	m.afterChange(r.provider, r.day, false)
	return nil
}

func (m *refModel) finishUnknown(r *refRequest, now time.Time) error {
	if r.settled {
		return ErrRequestDone
	}
	m.settle(r, now)
	r.day.counts(r.task).UnknownUsage++
	return nil
}

func (m *refModel) fail(r *refRequest, fallback bool, now time.Time) error {
	if r.settled {
		return ErrRequestDone
	}
	m.settle(r, now)
	c := r.day.counts(r.task)
	c.Requests--
	c.EstimatedTokens -= r.estimate
	c.Failures++
	if fallback {
		c.Fallbacks++
	}
	return nil
}

func (m *refModel) finishOn(r *refRequest, provider string, u Usage, now time.Time) error {
	if r.settled {
		return ErrRequestDone
	}
	served, err := m.provider(provider, now)
	if err != nil {
		return err
	}
	if served == r.provider {
		return m.finish(r, u, now)
	}
	_ = m.fail(r, true, now)

	d := served.dayAt(now)
	if prev := served.previous; prev != nil && refDateIn(r.begun, served.loc) == prev.date {
		d = prev
	}
	m.served(served, d, r.task, u)
	return nil
}

func (m *refModel) setLimits(provider string, limits Limits, now time.Time) error {
	if limits.Requests < 0 || limits.Tokens < 0 {
		return errors.New("negative limit")
	}
	p, err := m.provider(provider, now)
	if err != nil {
		return err
	}
	if p.name != provider {
		return errors.New("past MaxProviders")
	}
	d := p.dayAt(now)
	p.limits = limits
	m.evaluate(p, d)
	return nil
}

func (m *refModel) status(provider string, now time.Time) (refStatus, error) {
	if provider == "" {
		return refStatus{}, ErrInvalidName
	}
	p, ok := m.providers[provider]
	if !ok {
		return refStatus{Date: refDateIn(now, m.loc)}, nil
	}
	d := p.dayAt(now)
	requests, tokens := d.totals()
	requestLevel, tokenLevel := m.levels(p, d)
	return refStatus{
		Date:         d.date,
		Requests:     requests,
		Tokens:       tokens,
		RequestLimit: p.limits.Requests,
		TokenLimit:   p.limits.Tokens,
		Level:        max(requestLevel, tokenLevel),
	}, nil
}

func refStatusOf(st Status) refStatus {
	return refStatus{
		Date:         st.Date,
		Requests:     st.Requests.Used,
		Tokens:       st.Tokens.Used,
		RequestLimit: st.Requests.Limit,
		TokenLimit:   st.Tokens.Limit,
		Level:        st.Level,
	}
}

func (m *refModel) snapshot(now time.Time) refSnapshot {
	names := make([]string, 0, len(m.providers))
	for name := range m.providers {
		names = append(names, name)
	}
	sort.Strings(names)

	s := refSnapshot{InvalidInputs: m.invalid, LateUsage: m.late}
	for _, name := range names {
		p := m.providers[name]
		d := p.dayAt(now)
		requestLevel, tokenLevel := m.levels(p, d)
		ps := refProviderSnapshot{Name: name, Date: d.date, Tasks: d.snapshot(), Limits: p.limits, Level: max(requestLevel, tokenLevel)}
		// None of the zones skips a day in the years the sequences reach, so
		// the previous day is yesterday exactly when the dates are adjacent.
		if prev := p.previous; prev != nil && prev.date.AddDays(1) == d.date {
			ps.Yesterday = &refDayCounts{Date: prev.date, Tasks: prev.snapshot()}
		}
		s.Providers = append(s.Providers, ps)
	}
	return s
}
