// Command ccrusage-demo sends a realistic mix of agent requests through
// ccrusage.Transport to claude-code-router (CCR), prints each alert through
// log/slog as it fires, serves the counts at /ccr/metrics on 127.0.0.1, and
// prints the final snapshot.
//
// With no CCR given, it starts an in-process stand-in for CCR on loopback,
// so it runs on a fresh machine:
//
//	go run ./cmd/ccrusage-demo
//
// To use a running CCR, give its URL, and the API key if its config sets
// APIKEY. The demo reads CCR's config.json to tell which provider served
// each model:
//
//	go run ./cmd/ccrusage-demo -ccr http://127.0.0.1:3456 -api-key "$CCR_API_KEY" \
//	    -config ~/.claude-code-router/config.json
//
// The flags -ccr, -api-key and -config default to the environment
// variables CCR_URL, CCR_API_KEY and CCR_CONFIG.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/ccrusage/ccrusage"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ccrusage-demo:", err)
		os.Exit(1)
	}
}

// options are the demo's command-line settings.
type options struct {
	ccrURL     string
	apiKey     string
	configPath string
	listen     string
	rounds     int
	serve      bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("ccrusage-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ccrURL, "ccr", os.Getenv("CCR_URL"), "base URL of a running claude-code-router (env CCR_URL); empty starts the in-process stand-in")
	fs.StringVar(&o.apiKey, "api-key", "", "CCR's APIKEY, sent as x-api-key (env CCR_API_KEY); empty sends none")
	fs.StringVar(&o.configPath, "config", os.Getenv("CCR_CONFIG"), "path of CCR's config.json, to map models to providers (env CCR_CONFIG); empty uses the stand-in's config")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to serve /ccr/metrics on")
	fs.IntVar(&o.rounds, "rounds", 4, "rounds of requests to send; each round sends one request per route, streaming and not")
	fs.BoolVar(&o.serve, "serve", false, "keep serving /ccr/metrics after the requests, until interrupted")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.apiKey == "" {
		// Read after parsing, so that -h never prints the key as a default.
		o.apiKey = os.Getenv("CCR_API_KEY")
	}
	if o.rounds < 1 {
		return o, fmt.Errorf("invalid -rounds %d: must be at least 1", o.rounds)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	// CCR: the one given, or the stand-in on loopback.
	var cfg *ccrusage.CCRConfig
	if o.configPath != "" {
		if cfg, err = ccrusage.LoadCCRConfig(o.configPath); err != nil {
			return err
		}
	} else if cfg, err = ccrusage.ParseCCRConfig([]byte(standinConfig), func(string) string { return "" }); err != nil {
		return err
	}
	if o.ccrURL == "" {
		url, stop, err := startStandin()
		if err != nil {
			return err
		}
		defer stop()
		o.ccrURL = url
		logger.Info("started the CCR stand-in", "url", url)
	}

	// The tracker, with limits small enough that the mix below reaches
	// WARNING and CRITICAL.
	sink := ccrusage.NewSlogSink(logger)
	tr, err := ccrusage.New(ccrusage.Config{
		Sink: sink,
		Providers: []ccrusage.ProviderConfig{
			{Name: ccrusage.ProviderDeepSeek, Limits: ccrusage.Limits{Requests: 3 * int64(o.rounds)}},
			{Name: ccrusage.ProviderGemini, Location: mustLoad("America/Los_Angeles"), Limits: ccrusage.Limits{Tokens: 6000 * int64(o.rounds)}},
			{Name: ccrusage.ProviderOpenRouter, Limits: ccrusage.Limits{Requests: 4 * int64(o.rounds)}},
		},
	})
	if err != nil {
		return err
	}
	hc, err := ccrusage.NewHealthChecker(ccrusage.HealthConfig{URL: o.ccrURL, APIKey: o.apiKey, Sink: sink})
	if err != nil {
		return err
	}

	// /ccr/metrics on loopback.
	metricsURL, stopMetrics, err := serveMetrics(o.listen, tr, hc)
	if err != nil {
		return err
	}
	defer stopMetrics()
	logger.Info("serving metrics", "url", metricsURL)

	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &ccrusage.Transport{Tracker: tr, Config: cfg, Health: hc},
	}
	sent, failed := 0, 0
	for round := 0; round < o.rounds; round++ {
		for _, req := range agentRequests(cfg) {
			for _, stream := range []bool{false, true} {
				status, err := send(client, o.ccrURL, o.apiKey, req, stream)
				sent++
				switch {
				case err != nil:
					failed++
					logger.Warn("request failed", "route", req.name, "stream", stream, "error", err)
				case status != http.StatusOK:
					failed++
					logger.Warn("request failed", "route", req.name, "stream", stream, "status", status)
				}
			}
		}
	}
	logger.Info("requests sent", "sent", sent, "failed", failed)

	// The final snapshot, as the metrics endpoint serves it.
	body, err := get(metricsURL)
	if err != nil {
		return err
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, body, "", "  "); err != nil {
		return fmt.Errorf("metrics response is not JSON: %w", err)
	}
	fmt.Fprintln(stdout, indented.String())

	if o.serve {
		logger.Info("serving metrics until interrupted", "url", metricsURL)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		<-ctx.Done()
	}
	return nil
}

// agentRequest is one kind of request an agent sends, shaped to take one of
// CCR's routes.
type agentRequest struct {
	name string
	body map[string]any
}

// agentRequests returns one request per CCR route: default, background,
// think, longContext, webSearch and an explicit "provider,model".
func agentRequests(cfg *ccrusage.CCRConfig) []agentRequest {
	user := func(text string) []map[string]any {
		return []map[string]any{{"role": "user", "content": text}}
	}
	requests := []agentRequest{
		{"default", map[string]any{"model": "claude-sonnet-4-20250514", "max_tokens": 512,
			"messages": user("Refactor this function to return an error instead of panicking.")}},
		{"background", map[string]any{"model": "claude-3-5-haiku-20241022", "max_tokens": 128,
			"messages": user("Summarize the last three commits in one line.")}},
		{"think", map[string]any{"model": "claude-sonnet-4-20250514", "max_tokens": 1024,
			"thinking": map[string]any{"type": "enabled", "budget_tokens": 512},
			"messages": user("Plan the migration of the billing tables, step by step.")}},
		{"longContext", map[string]any{"model": "claude-sonnet-4-20250514", "max_tokens": 256,
			"messages": user("Find the failing test in this log:\n" + strings.Repeat("ok   example.com/pkg  0.012s\n", 400))}},
		{"webSearch", map[string]any{"model": "claude-sonnet-4-20250514", "max_tokens": 256,
			"tools":    []map[string]any{{"type": "web_search_20250305", "name": "web_search"}},
			"messages": user("What changed in the latest Go release?")}},
	}
	if len(cfg.Providers) > 0 && len(cfg.Providers[len(cfg.Providers)-1].Models) > 0 {
		p := cfg.Providers[len(cfg.Providers)-1]
		requests = append(requests, agentRequest{"explicit", map[string]any{"model": p.Name + "," + p.Models[len(p.Models)-1], "max_tokens": 256,
			"messages": user("Review this pull request description.")}})
	}
	return requests
}

// send posts one Messages API request and reads the whole response, as an
// agent does, and returns the status code.
func send(client *http.Client, baseURL, apiKey string, r agentRequest, stream bool) (int, error) {
	body := map[string]any{"stream": stream}
	for k, v := range r.body {
		body[k] = v
	}
	data, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/v1/messages", bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	if apiKey != "" {
		req.Header.Set("x-api-key", apiKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// startStandin serves the CCR stand-in on a free loopback port.
func startStandin() (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("starting the CCR stand-in failed: %w", err)
	}
	srv := &http.Server{Handler: &standin{}, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// serveMetrics serves the metrics handler at /ccr/metrics on addr.
func serveMetrics(addr string, tr *ccrusage.Tracker, hc *ccrusage.HealthChecker) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listening on %s failed: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ccr/metrics", ccrusage.NewMetricsHandler(tr, hc))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/ccr/metrics", func() { srv.Close() }, nil
}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("GET " + url + ": " + resp.Status)
	}
	return body, nil
}

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}
