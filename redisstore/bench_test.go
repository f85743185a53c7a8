package redisstore

import (
	"context"
	"strconv"
	"testing"

	"github.com/ccrusage/ccrusage"
)

// BenchmarkRecord compares the record path of a Tracker that keeps its
// counts in memory with one whose Store flushes to Redis in the background
// at the default interval. Recording never waits on Redis, so the two
// should cost the same.
func BenchmarkRecord(b *testing.B) {
	u := ccrusage.Usage{InputTokens: 1200, OutputTokens: 300}
	run := func(b *testing.B, tr *ccrusage.Tracker) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := tr.Record(ccrusage.ProviderGemini, ccrusage.TaskDefault, u); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}

	b.Run("store=memory", func(b *testing.B) {
		tr, err := ccrusage.New(ccrusage.Config{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, tr)
	})
	b.Run("store=redis", func(b *testing.B) {
		srv := startRedis(b)
		client := newClient(b, srv.addr(), nil)
		in := newInstance(b, client, ccrusage.Config{}, Options{FlushInterval: DefaultFlushInterval})
		run(b, in.tr)
		b.StopTimer()
		if err := in.st.Close(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkFlush measures one Flush that applies a change to each of n keys
// (provider, task and day) and reads back their totals, against a local
// redis-server. ns/key is the time per op divided by n.
func BenchmarkFlush(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			tasks := min(n, 10)
			providers := n / tasks
			srv := startRedis(b)
			client := newClient(b, srv.addr(), nil)
			in := newInstance(b, client, ccrusage.Config{MaxProviders: providers, MaxTasks: tasks}, Options{})
			handles := make([]ccrusage.Handle, 0, n)
			for p := 0; p < providers; p++ {
				for task := 0; task < tasks; task++ {
					h, err := in.tr.Handle("provider-"+strconv.Itoa(p), "task-"+strconv.Itoa(task))
					if err != nil {
						b.Fatal(err)
					}
					handles = append(handles, h)
				}
			}
			ctx := context.Background()
			u := ccrusage.Usage{InputTokens: 1200, OutputTokens: 300}

			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for _, h := range handles {
					h.Record(u)
				}
				b.StartTimer()
				if err := in.st.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
		})
	}
}
