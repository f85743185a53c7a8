package ccrusage_test

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ccrusage/ccrusage"
)

// dropTime removes slog's own time attribute so that the output is stable.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// The whole wiring: limits per provider, each in its own zone, alerts to a
// slog.Logger, and a day rollover driven by a ManualClock.
func Example() {
	pacific, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		panic(err)
	}
	clock := ccrusage.NewManualClock(time.Date(2026, time.October, 14, 23, 0, 0, 0, pacific))
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: dropTime}))

	tr, err := ccrusage.New(ccrusage.Config{
		Clock: clock,
		Sink:  ccrusage.NewSlogSink(logger),
		Providers: []ccrusage.ProviderConfig{
			// Gemini's free tier resets at midnight Pacific time.
			{Name: ccrusage.ProviderGemini, Location: pacific, Limits: ccrusage.Limits{Requests: 10}},
			{Name: ccrusage.ProviderOpenRouter, Limits: ccrusage.Limits{Tokens: 50_000}},
		},
	})
	if err != nil {
		panic(err)
	}

	for i := 0; i < 10; i++ {
		if err := tr.Record(ccrusage.ProviderGemini, ccrusage.TaskBackground, ccrusage.Usage{InputTokens: 900, OutputTokens: 120}); err != nil {
			panic(err)
		}
	}
	st, _ := tr.Status(ccrusage.ProviderGemini)
	fmt.Println(st.Date, st.Level, st.Requests.Remaining(), "requests left")

	// Midnight in Los Angeles: a new day, and the first request of it
	// announces the recovery.
	clock.Advance(90 * time.Minute)
	_ = tr.Record(ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 10})
	st, _ = tr.Status(ccrusage.ProviderGemini)
	fmt.Println(st.Date, st.Level, st.Requests.Remaining(), "requests left")

	// Output:
	// level=WARN msg="gemini is WARNING (was INFO): requests 80.0% of 10, tokens 8160 (unlimited)" kind=quota alert_level=WARNING previous_level=INFO provider=gemini date=2026-10-14 requests=8 request_limit=10 tokens=8160 token_limit=0 ratio=0.8 alert_time=2026-10-14T23:00:00.000-07:00
	// level=ERROR msg="gemini is CRITICAL (was WARNING): requests 100.0% of 10, tokens 10200 (unlimited)" kind=quota alert_level=CRITICAL previous_level=WARNING provider=gemini date=2026-10-14 requests=10 request_limit=10 tokens=10200 token_limit=0 ratio=1 alert_time=2026-10-14T23:00:00.000-07:00
	// 2026-10-14 CRITICAL 0 requests left
	// level=INFO msg="gemini is INFO (was CRITICAL): requests 10.0% of 10, tokens 10 (unlimited)" kind=quota alert_level=INFO previous_level=CRITICAL provider=gemini date=2026-10-15 requests=1 request_limit=10 tokens=10 token_limit=0 ratio=0.1 alert_time=2026-10-15T00:30:00.000-07:00
	// 2026-10-15 INFO 9 requests left
}

// Two phases of one request: count it before sending with an estimate, then
// replace the estimate with the usage the response reports.
func ExampleTracker_Begin() {
	clock := ccrusage.NewManualClock(time.Date(2026, time.October, 14, 9, 0, 0, 0, time.UTC))
	tr, err := ccrusage.New(ccrusage.Config{Clock: clock})
	if err != nil {
		panic(err)
	}

	prompt := "Summarize the build log in three bullet points."
	req, err := tr.Begin(ccrusage.ProviderDeepSeek, ccrusage.TaskDefault, ccrusage.EstimateTokens(prompt))
	if err != nil {
		panic(err)
	}
	fmt.Println("estimated:", tr.Snapshot().Totals.EstimatedTokens)

	// ... send the request through CCR ...

	if err := req.Finish(ccrusage.Usage{InputTokens: 14, OutputTokens: 52}); err != nil {
		panic(err)
	}
	totals := tr.Snapshot().Totals
	fmt.Println("requests:", totals.Requests, "tokens:", totals.Tokens, "estimated:", totals.EstimatedTokens)

	// Output:
	// estimated: 12
	// requests: 1 tokens: 66 estimated: 0
}

// Check the headroom before choosing a route, and pick another provider
// when the first is close to its limit.
func ExampleTracker_Status() {
	clock := ccrusage.NewManualClock(time.Date(2026, time.October, 14, 9, 0, 0, 0, time.UTC))
	tr, err := ccrusage.New(ccrusage.Config{
		Clock:     clock,
		Providers: []ccrusage.ProviderConfig{{Name: ccrusage.ProviderGemini, Limits: ccrusage.Limits{Requests: 5}}},
	})
	if err != nil {
		panic(err)
	}
	for i := 0; i < 4; i++ {
		_ = tr.Record(ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 100})
	}

	provider := ccrusage.ProviderGemini
	if st, _ := tr.Status(provider); st.Level >= ccrusage.LevelWarning {
		fmt.Printf("%s at %s, resets %s\n", provider, st.Requests.Percent(), st.ResetsAt.Format(time.RFC3339))
		provider = ccrusage.ProviderOpenRouter
	}
	fmt.Println("route to", provider)

	// Output:
	// gemini at 80.0%, resets 2026-10-15T00:00:00Z
	// route to openrouter
}

// EvaluateQuota is the pure function behind every level: exact at the
// boundaries, in integers.
func ExampleEvaluateQuota() {
	for _, used := range []int64{7_999, 8_000, 9_500} {
		q := ccrusage.EvaluateQuota(used, 10_000, ccrusage.Thresholds{})
		fmt.Println(used, q.Percent(), q.Level)
	}
	// Output:
	// 7999 79.9% INFO
	// 8000 80.0% WARNING
	// 9500 95.0% CRITICAL
}
