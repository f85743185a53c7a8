package prometheus_test

// The floor and the Record benchmark repeat those of the root package so
// that the Prometheus ratio comes from one process. Keep their setup the
// same as in ../../bench_test.go.

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrusage/ccrusage"
	"github.com/ccrusage/ccrusage/internal/cputime"
	"github.com/prometheus/client_golang/prometheus"
)

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
	benchUsage  = ccrusage.Usage{InputTokens: 1200, OutputTokens: 300}
	benchLimits = ccrusage.Limits{Requests: 1 << 50, Tokens: 1 << 60}
)

// benchShared runs op as the sub-benchmarks "serial" and "parallel". The
// parallel one calls a single op from GOMAXPROCS goroutines, and the serial
// one also reports the CPU time of its thread per op.
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

type floorCounts struct {
	requests atomic.Int64
	tokens   atomic.Int64
}

// BenchmarkFloor is one real clock read, one map lookup and two atomic
// adds.
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

// BenchmarkRecord is Tracker.Record of a known provider and task with the
// real clock and no change of level.
func BenchmarkRecord(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		providers := make([]ccrusage.ProviderConfig, 0, len(benchProviders))
		for _, name := range benchProviders {
			providers = append(providers, ccrusage.ProviderConfig{Name: name, Limits: benchLimits})
		}
		tr, err := ccrusage.New(ccrusage.Config{Providers: providers})
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
		provider, task := benchProviders[0], benchTasks[0]
		return func() error {
			return tr.Record(provider, task, benchUsage)
		}
	})
}

// BenchmarkPrometheusPair counts one request and its tokens the way a
// service instrumented with Prometheus would: Inc on a requests CounterVec
// and Add on a tokens CounterVec, both labelled by provider and task. It
// reads no clock, keeps no days and checks no limit.
func BenchmarkPrometheusPair(b *testing.B) {
	benchShared(b, func(b *testing.B) func() error {
		labels := []string{"provider", "task"}
		requests := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_requests_total",
			Help: "Requests sent, by provider and task type.",
		}, labels)
		tokens := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llm_tokens_total",
			Help: "Tokens used, by provider and task type.",
		}, labels)
		registry := prometheus.NewRegistry()
		registry.MustRegister(requests, tokens)
		used := float64(benchUsage.Total())
		for _, p := range benchProviders {
			for _, task := range benchTasks {
				requests.WithLabelValues(p, task).Inc()
				tokens.WithLabelValues(p, task).Add(used)
			}
		}
		provider, task := benchProviders[0], benchTasks[0]
		return func() error {
			requests.WithLabelValues(provider, task).Inc()
			tokens.WithLabelValues(provider, task).Add(used)
			return nil
		}
	})
}
