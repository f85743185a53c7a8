package ccrusage_test

// Benchmarks of the per-request path, each run serially and under
// b.RunParallel. Baselines run in the same process so that ratios come from
// one run: a bare clock read, the floor (one clock read, one map lookup and
// two atomic adds) and the tracker a user would write without this package.
// scripts/bench.sh runs them with the Prometheus baseline of
// benchmarks/prometheus, and BENCHMARKS.md records the results.

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/ccrusage/ccrusage/internal/cputime"
)

// benchStart is the instant of the benchmarks that use a fixed or manual
// clock: noon in UTC, far from any midnight.
var benchStart = time.Date(2026, time.October, 14, 12, 0, 0, 0, time.UTC)

// benchProviders and benchTasks are the names recorded in every tracker of
// these benchmarks before timing starts, so that its name maps have the
// sizes of a typical CCR setup. Timed records go to the first pair.
var (
	benchProviders = []string{
		ccrusage.ProviderDeepSeek,
		ccrusage.ProviderAnthropic,
		ccrusage.ProviderGemini,
		ccrusage.ProviderOpenRouter,
	}
	benchTasks = []string{
		ccrusage.TaskThink,
		ccrusage.TaskDefault,
		ccrusage.TaskBackground,
		ccrusage.TaskLongContext,
		ccrusage.TaskWebSearch,
		ccrusage.TaskImage,
	}
)

// benchUsage is the usage of each recorded request: two non-zero token
// kinds, as most responses report.
var benchUsage = ccrusage.Usage{InputTokens: 1200, OutputTokens: 300}

// benchLimits are daily limits that no benchmark reaches, so that records
// compare against real limits without changing the level.
var benchLimits = ccrusage.Limits{Requests: 1 << 50, Tokens: 1 << 60}

// fixedClock returns the same instant on every call. It is the cheapest
// possible Clock, so a benchmark that uses it measures the tracker alone.
type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time { return c.now }

// newBenchTracker returns a tracker reading clock (nil means the real one)
// with every pair of benchProviders and benchTasks recorded once.
func newBenchTracker(b *testing.B, clock ccrusage.Clock) *ccrusage.Tracker {
	b.Helper()
	providers := make([]ccrusage.ProviderConfig, 0, len(benchProviders))
	for _, name := range benchProviders {
		providers = append(providers, ccrusage.ProviderConfig{Name: name, Limits: benchLimits})
	}
	tr, err := ccrusage.New(ccrusage.Config{Clock: clock, Providers: providers})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range benchProviders {
		for _, task := range benchTasks {
			if err := tr.Record(p, task, benchUsage); err != nil {
				b.Fatal(err)
			}
		}
	}
	return tr
}

// benchShared runs op as the sub-benchmarks "serial" and "parallel". The
// parallel one calls a single op from GOMAXPROCS goroutines, so they
// contend for the same state. The serial one also reports the CPU time of
// its thread per op (cputime.Unit), which other jobs on the machine
// disturb less than wall time. newOp builds a fresh op for each.
func benchShared(b *testing.B, newOp func(b *testing.B) func() error) {
	b.Run("serial", func(b *testing.B) {
		op := newOp(b)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := cputime.Start()
		for i := 0; i < b.N; i++ {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Stop(b)
	})
	b.Run("parallel", func(b *testing.B) {
		op := newOp(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkClockRead is a bare read of the real clock, the one cost that
// every recording call pays.
func BenchmarkClockRead(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		var unix atomic.Int64
		return func() error {
			now := time.Now()
			if now.IsZero() {
				unix.Store(now.Unix()) // never runs; keeps the read observable
			}
			return nil
		}
	})
}

// floorCounts are the two counters of the floor baseline.
type floorCounts struct {
	requests atomic.Int64
	tokens   atomic.Int64
}

// BenchmarkFloor is the least any per-provider counter can do per request:
// one real clock read, one map lookup and two atomic adds, with no day,
// no task, no limit and no saturation.
func BenchmarkFloor(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		counts := make(map[string]*floorCounts, len(benchProviders))
		for _, name := range benchProviders {
			counts[name] = new(floorCounts)
		}
		provider := benchProviders[0]
		tokens := benchUsage.Total()
		var last atomic.Int64
		return func() error {
			now := time.Now()
			c := counts[provider]
			c.requests.Add(1)
			if c.tokens.Add(tokens) < 0 {
				last.Store(now.Unix()) // never runs; keeps the read observable
			}
			return nil
		}
	})
}

// naiveTracker is what a user might write instead of this package: one
// mutex and nested maps keyed by provider and task. Every call reads the
// real clock to find the day and computes the usage percentage in float64
// to decide the level.
type naiveTracker struct {
	mu     sync.Mutex
	limit  int64
	counts map[string]map[string]*naiveCounts
}

type naiveCounts struct {
	day      time.Time
	requests int64
	tokens   int64
	percent  float64
	warned   bool
}

func newNaiveTracker(limit int64) *naiveTracker {
	return &naiveTracker{limit: limit, counts: make(map[string]map[string]*naiveCounts)}
}

func (n *naiveTracker) record(provider, task string, tokens int64) {
	now := time.Now()
	day := now.Truncate(24 * time.Hour)

	n.mu.Lock()
	defer n.mu.Unlock()
	tasks, ok := n.counts[provider]
	if !ok {
		tasks = make(map[string]*naiveCounts)
		n.counts[provider] = tasks
	}
	c, ok := tasks[task]
	if !ok {
		c = &naiveCounts{day: day}
		tasks[task] = c
	}
	if !c.day.Equal(day) {
		*c = naiveCounts{day: day}
	}
	c.requests++
	c.tokens += tokens
	c.percent = float64(c.requests) / float64(n.limit) * 100
	if c.percent >= 80 && !c.warned {
		c.warned = true
	}
}

// BenchmarkNaiveRecord is the naive tracker's record of one request.
func BenchmarkNaiveRecord(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		n := newNaiveTracker(benchLimits.Requests)
		for _, p := range benchProviders {
			for _, task := range benchTasks {
				n.record(p, task, benchUsage.Total())
			}
		}
		provider, task, tokens := benchProviders[0], benchTasks[0], benchUsage.Total()
		return func() error {
			n.record(provider, task, tokens)
			return nil
		}
	})
}

// BenchmarkRecord is Tracker.Record of a known provider and task with the
// real clock, as users run it, with no change of level.
func BenchmarkRecord(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		tr := newBenchTracker(b, nil)
		provider, task := benchProviders[0], benchTasks[0]
		return func() error {
			return tr.Record(provider, task, benchUsage)
		}
	})
}

// BenchmarkRecordFixedClock is BenchmarkRecord with a clock that costs
// almost nothing: the tracker's own share of a record.
func BenchmarkRecordFixedClock(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		tr := newBenchTracker(b, fixedClock{benchStart})
		provider, task := benchProviders[0], benchTasks[0]
		return func() error {
			return tr.Record(provider, task, benchUsage)
		}
	})
}

// coarseClock is a Clock that a caller can write to skip the real clock
// read on every record: a ticker goroutine stores the time every tick,
// and Now loads it. Records up to one tick after midnight count on the day
// before.
type coarseClock struct {
	now  atomic.Pointer[time.Time]
	stop chan struct{}
	done chan struct{}
}

func newCoarseClock(tick time.Duration) *coarseClock {
	c := &coarseClock{stop: make(chan struct{}), done: make(chan struct{})}
	now := time.Now()
	c.now.Store(&now)
	go func() {
		defer close(c.done)
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-ticker.C:
				c.now.Store(&now)
			}
		}
	}()
	return c
}

func (c *coarseClock) Now() time.Time { return *c.now.Load() }

func (c *coarseClock) close() {
	close(c.stop)
	<-c.done
}

// BenchmarkRecordCoarseClock is BenchmarkRecord with a coarseClock of
// 10 ms ticks: what a caller gains by trading timing accuracy at midnight
// for the clock read.
func BenchmarkRecordCoarseClock(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		clock := newCoarseClock(10 * time.Millisecond)
		b.Cleanup(clock.close)
		tr := newBenchTracker(b, clock)
		provider, task := benchProviders[0], benchTasks[0]
		return func() error {
			return tr.Record(provider, task, benchUsage)
		}
	})
}

// BenchmarkHandleRecord is Handle.Record, which skips the name lookups,
// with the real clock.
func BenchmarkHandleRecord(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		tr := newBenchTracker(b, nil)
		h, err := tr.Handle(benchProviders[0], benchTasks[0])
		if err != nil {
			b.Fatal(err)
		}
		return func() error {
			h.Record(benchUsage)
			return nil
		}
	})
}

// BenchmarkHandleRecordFixedClock is BenchmarkHandleRecord with the fixed
// clock.
func BenchmarkHandleRecordFixedClock(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		tr := newBenchTracker(b, fixedClock{benchStart})
		h, err := tr.Handle(benchProviders[0], benchTasks[0])
		if err != nil {
			b.Fatal(err)
		}
		return func() error {
			h.Record(benchUsage)
			return nil
		}
	})
}

// BenchmarkBeginFinish is one Tracker.Begin with an estimate and the
// Request.Finish that settles it, with the real clock.
func BenchmarkBeginFinish(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		tr := newBenchTracker(b, nil)
		provider, task := benchProviders[0], benchTasks[0]
		return func() error {
			req, err := tr.Begin(provider, task, 1000)
			if err != nil {
				return err
			}
			return req.Finish(benchUsage)
		}
	})
}

// BenchmarkStatus is Tracker.Status, the headroom check a caller makes
// before choosing a route, with the real clock.
func BenchmarkStatus(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		tr := newBenchTracker(b, nil)
		provider := benchProviders[0]
		return func() error {
			_, err := tr.Status(provider)
			return err
		}
	})
}

// BenchmarkSnapshotJSON is json.Marshal of a Snapshot of 4 providers with
// 6 task types each, as a metrics endpoint serves it.
func BenchmarkSnapshotJSON(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		tr := newBenchTracker(b, nil)
		return func() error {
			_, err := json.Marshal(tr.Snapshot())
			return err
		}
	})
}

// crossingTracker makes every Record cross a threshold. With thresholds of
// 50 % and 100 % and a limit of 2 requests a day, the first record of a day
// turns the provider WARNING and the second CRITICAL. The manual clock then
// moves to the next day before the third, whose first record is WARNING
// again (down from CRITICAL, announced because the new day has not
// announced it). So each op sends exactly one alert, and every second op
// also starts a day.
type crossingTracker struct {
	tr     *ccrusage.Tracker
	clock  *ccrusage.ManualClock
	ops    int
	alerts int
}

func newCrossingTracker() (*crossingTracker, error) {
	ct := &crossingTracker{clock: ccrusage.NewManualClock(benchStart)}
	tr, err := ccrusage.New(ccrusage.Config{
		Clock:      ct.clock,
		Sink:       ccrusage.AlertFunc(func(ccrusage.Alert) { ct.alerts++ }),
		Thresholds: ccrusage.Thresholds{Warning: 0.5, Critical: 1},
		Providers: []ccrusage.ProviderConfig{
			{Name: benchProviders[0], Limits: ccrusage.Limits{Requests: 2}},
		},
	})
	if err != nil {
		return nil, err
	}
	ct.tr = tr
	return ct, nil
}

// record records one request, first moving to the next day after every
// two.
func (ct *crossingTracker) record() error {
	if ct.ops > 0 && ct.ops%2 == 0 {
		ct.clock.Set(benchStart.AddDate(0, 0, ct.ops/2))
	}
	ct.ops++
	return ct.tr.Record(benchProviders[0], benchTasks[0], benchUsage)
}

// check returns an error unless each record sent one alert.
func (ct *crossingTracker) check() error {
	if ct.alerts != ct.ops {
		return fmt.Errorf("%d records sent %d alerts, want one each", ct.ops, ct.alerts)
	}
	return nil
}

// BenchmarkRecordCrossing is a Tracker.Record that crosses a threshold and
// sends its alert to a sink that only counts it (see crossingTracker). The
// parallel variant gives each goroutine its own tracker, because the
// crossings of one tracker are at most two a day and its day moves only
// with its clock.
func BenchmarkRecordCrossing(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		ct, err := newCrossingTracker()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := ct.record(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := ct.check(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ct, err := newCrossingTracker()
			if err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if err := ct.record(); err != nil {
					b.Error(err)
					return
				}
			}
			if err := ct.check(); err != nil {
				b.Error(err)
			}
		})
	})
}

// liveHeap returns the bytes of live heap objects. It collects twice
// because objects in a sync.Pool survive the first collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// retainedMemory are the heap bytes a Tracker keeps, measured by
// measureRetainedMemory.
type retainedMemory struct {
	tracker     float64 // a new Tracker with no provider
	perProvider float64 // a provider's state and first day, with one task
	perPair     float64 // each further task of a provider on one day
	perDay      float64 // a provider's new day with every task slot used
	thirdDay    float64 // growth of the whole tracker on a third day
	worstCase   float64 // everything, with every name bound reached
}

// measureRetainedMemory fills a Tracker with the default name bounds to the
// limit: DefaultMaxProviders names plus one that lands in OverflowName, and
// DefaultMaxTasks plus one likewise, each pair recorded on three days in a
// row. The caller's name strings are allocated before the first reading,
// but the tracker's own copy of each name is counted.
func measureRetainedMemory(b *testing.B) retainedMemory {
	b.Helper()
	providers := make([]string, ccrusage.DefaultMaxProviders+1)
	for i := range providers {
		providers[i] = fmt.Sprintf("provider-%02d", i)
	}
	tasks := make([]string, ccrusage.DefaultMaxTasks+1)
	for i := range tasks {
		tasks[i] = fmt.Sprintf("task-%02d", i)
	}
	clock := ccrusage.NewManualClock(benchStart)
	recordAll := func(tr *ccrusage.Tracker, tasks []string) {
		for _, p := range providers {
			for _, task := range tasks {
				if err := tr.Record(p, task, benchUsage); err != nil {
					b.Fatal(err)
				}
			}
		}
	}

	before := liveHeap()
	tr, err := ccrusage.New(ccrusage.Config{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	empty := liveHeap()
	recordAll(tr, tasks[:1])
	oneTask := liveHeap()
	recordAll(tr, tasks[1:])
	firstDay := liveHeap()
	clock.Set(benchStart.AddDate(0, 0, 1))
	recordAll(tr, tasks)
	secondDay := liveHeap()
	clock.Set(benchStart.AddDate(0, 0, 2))
	recordAll(tr, tasks)
	thirdDay := liveHeap()
	runtime.KeepAlive(tr)

	n := float64(len(providers))
	return retainedMemory{
		tracker:     float64(empty) - float64(before),
		perProvider: (float64(oneTask) - float64(empty)) / n,
		perPair:     (float64(firstDay) - float64(oneTask)) / (n * float64(len(tasks)-1)),
		perDay:      (float64(secondDay) - float64(firstDay)) / n,
		thirdDay:    float64(thirdDay) - float64(secondDay),
		worstCase:   float64(thirdDay) - float64(before),
	}
}

// BenchmarkRetainedMemory reports the heap bytes a Tracker keeps, from
// measureRetainedMemory. B/tracker is an empty Tracker, B/provider a
// provider with one task on one day, and B/pair each further task on that
// day. B/provider-day is a provider's next day with all its tasks, and
// B/third-day what a third day adds in total, which is about zero because
// the day before yesterday is dropped. B/worst-case is all of it. Its ns/op
// is not reported because each op runs several garbage collections.
func BenchmarkRetainedMemory(b *testing.B) {
	var m retainedMemory
	for i := 0; i < b.N; i++ {
		m = measureRetainedMemory(b)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(m.tracker, "B/tracker")
	b.ReportMetric(m.perProvider, "B/provider")
	b.ReportMetric(m.perPair, "B/pair")
	b.ReportMetric(m.perDay, "B/provider-day")
	b.ReportMetric(m.thirdDay, "B/third-day")
	b.ReportMetric(m.worstCase, "B/worst-case")
}
