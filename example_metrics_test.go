package ccrusage_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ccrusage/ccrusage"
)

func ExampleNewMetricsHandler() {
	clock := ccrusage.NewManualClock(time.Date(2026, time.December, 4, 9, 30, 0, 0, time.UTC))
	tr, err := ccrusage.New(ccrusage.Config{
		Clock: clock,
		Providers: []ccrusage.ProviderConfig{
			{Name: ccrusage.ProviderDeepSeek, Limits: ccrusage.Limits{Requests: 1000}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Nothing listens on this port any more, so every connection to it is
	// refused and CCR counts as unavailable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ccrURL := "http://" + ln.Addr().String()
	ln.Close()
	hc, err := ccrusage.NewHealthChecker(ccrusage.HealthConfig{URL: ccrURL, Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}

	mux := http.NewServeMux()
	mux.Handle("/ccr/metrics", ccrusage.NewMetricsHandler(tr, hc))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	if err := tr.Record(ccrusage.ProviderDeepSeek, ccrusage.TaskThink, ccrusage.Usage{InputTokens: 1200, OutputTokens: 300}); err != nil {
		fmt.Println(err)
		return
	}

	resp, err := http.Get(srv.URL + "/ccr/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var m ccrusage.Metrics
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		fmt.Println(err)
		return
	}

	p := m.Providers[0]
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	fmt.Println(p.Name, p.Level, p.Requests, "requests,", p.Tokens, "tokens,", p.Percent)
	fmt.Println("ccr:", m.CCR.State)
	// Output:
	// 200 OK application/json
	// deepseek INFO 1 requests, 1500 tokens, 0.1%
	// ccr: unavailable
}
