package ccrusage_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/ccrusage/ccrusage"
)

// Wrap the client that talks to claude-code-router in a Transport: each
// Messages API request is classified as CCR's router does and counted with
// the usage of its response. Here an httptest server plays CCR.
func ExampleTransport() {
	ccr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"type":"message","model":"gemini-2.5-flash","content":[],`+
			`"usage":{"input_tokens":120,"output_tokens":42,"cache_read_input_tokens":20}}`)
	}))
	defer ccr.Close()

	// CCR's own config.json maps each route and model to its provider. In a
	// service, load the file with LoadCCRConfig.
	cfg, err := ccrusage.ParseCCRConfig([]byte(`{
		"Providers": [
			{"name": "deepseek", "models": ["deepseek-chat"]},
			{"name": "gemini", "models": ["gemini-2.5-flash"]},
		],
		"Router": {"default": "deepseek,deepseek-chat", "background": "gemini,gemini-2.5-flash"},
	}`), func(string) string { return "" })
	if err != nil {
		panic(err)
	}
	tr, err := ccrusage.New(ccrusage.Config{Clock: ccrusage.NewManualClock(time.Date(2026, time.October, 14, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &ccrusage.Transport{Tracker: tr, Config: cfg}}

	// A Claude Haiku model takes CCR's background route.
	body := `{"model":"claude-3-5-haiku-20241022","max_tokens":64,"messages":[{"role":"user","content":"Summarize the diff."}]}`
	resp, err := client.Post(ccr.URL+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body) // the usage is recorded when the body has been read
	resp.Body.Close()

	// A request can also name its route through its context.
	req, _ := http.NewRequestWithContext(ccrusage.WithRoute(context.Background(), "gemini", "summaries"),
		http.MethodPost, ccr.URL+"/v1/messages", strings.NewReader(body))
	resp, err = client.Do(req)
	if err != nil {
		panic(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	for _, p := range tr.Snapshot().Providers {
		for task, n := range p.Tasks {
			fmt.Printf("%s %s: %d request, %d input, %d output, %d cache-read tokens\n",
				p.Name, task, n.Requests, n.InputTokens, n.OutputTokens, n.CacheReadTokens)
		}
	}
	// Unordered output:
	// gemini background: 1 request, 120 input, 42 output, 20 cache-read tokens
	// gemini summaries: 1 request, 120 input, 42 output, 20 cache-read tokens
}
