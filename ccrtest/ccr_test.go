package ccrtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ccrusage/ccrusage"
	"github.com/ccrusage/ccrusage/ccrtest/harness"
)

// shared is the CCR that every test without a config of its own uses. The
// first call of sharedCCR starts it, and TestMain stops it.
var shared struct {
	once sync.Once
	h    *harness.Harness
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.h != nil {
		if err := shared.h.Close(); err != nil {
			os.Stderr.WriteString("closing the shared CCR harness failed: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// sharedCCR returns the shared harness, starting it on first use. It skips
// or fails t as harness.SkipOrFatal does when CCR cannot start, and logs
// CCR's logs when t fails.
func sharedCCR(t *testing.T) *harness.Harness {
	t.Helper()
	shared.once.Do(func() {
		shared.h, shared.err = harness.New(harness.Options{})
	})
	harness.SkipOrFatal(t, shared.err)
	h := shared.h
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("CCR logs:\n%s", h.LogTail(40))
		}
	})
	return h
}

// baseTime is the instant at which every test's clock starts.
var baseTime = time.Date(2025, time.June, 2, 9, 30, 0, 0, time.UTC)

// fixture is one test's client of a CCR. Each request the client sends
// goes through a ccrusage.Transport, which records it in a Tracker of the
// fixture's own, so the counts of one test never include another's.
type fixture struct {
	client anthropic.Client
	// httpClient is the client's *http.Client, whose Transport is a
	// ccrusage.Transport.
	httpClient *http.Client
	url        string
	apiKey     string
	tracker    *ccrusage.Tracker
	// clock is the Clock of both tracker and health. It moves only when
	// the test advances it.
	clock  *ccrusage.ManualClock
	health *ccrusage.HealthChecker
	// alerts receives the alerts of both tracker and health.
	alerts *alertLog
}

// newFixture returns a fixture for the CCR of h. The transport reads the
// config.json that the harness wrote for CCR, and reports refused
// connections to a HealthChecker for CCR's URL, which probes /health at
// most once per ccrusage.DefaultHealthInterval of the fixture's clock.
func newFixture(t *testing.T, h *harness.Harness) *fixture {
	t.Helper()
	f := &fixture{clock: ccrusage.NewManualClock(baseTime), alerts: &alertLog{}}

	cfg, err := ccrusage.LoadCCRConfig(h.ConfigPath())
	require.NoError(t, err)

	f.tracker, err = ccrusage.New(ccrusage.Config{Clock: f.clock, Sink: f.alerts})
	require.NoError(t, err)

	probes := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	f.health, err = ccrusage.NewHealthChecker(ccrusage.HealthConfig{
		URL:    h.URL(),
		APIKey: h.APIKey(),
		Client: &http.Client{Transport: probes},
		Clock:  f.clock,
		Sink:   f.alerts,
	})
	require.NoError(t, err)

	// A transport of its own, so that no test reuses another's
	// connections.
	base := &http.Transport{Proxy: nil}
	t.Cleanup(base.CloseIdleConnections)
	transport := &ccrusage.Transport{Base: base, Tracker: f.tracker, Config: cfg, Health: f.health}
	// The deadline keeps a stuck CCR or upstream from hanging the test.
	f.httpClient = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	f.url, f.apiKey = h.URL(), h.APIKey()
	f.client = f.newClient()
	return f
}

// newClient returns an SDK client that sends through the fixture's
// transport. It makes no retries, so each call is one HTTP request, unless
// opts, applied last, say otherwise.
func (f *fixture) newClient(opts ...option.RequestOption) anthropic.Client {
	defaults := []option.RequestOption{
		option.WithoutEnvironmentDefaults(), // ignore ANTHROPIC_* variables of the machine
		option.WithBaseURL(f.url),
		option.WithAPIKey(f.apiKey),
		option.WithHTTPClient(f.httpClient),
		option.WithMaxRetries(0),
	}
	return anthropic.NewClient(append(defaults, opts...)...)
}

// alertLog is an AlertSink that keeps every alert it receives.
type alertLog struct {
	mu     sync.Mutex // guards alerts
	alerts []ccrusage.Alert
}

func (l *alertLog) Send(a ccrusage.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.alerts = append(l.alerts, a)
}

// all returns a copy of the alerts received so far, oldest first.
func (l *alertLog) all() []ccrusage.Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ccrusage.Alert(nil), l.alerts...)
}

// counts maps a provider to its counts per task type.
type counts map[string]map[string]ccrusage.Counts

// assertCounts checks that the fixture's Tracker contains exactly want,
// with no other provider and no other task. It computes the Tokens field
// of want's entries from their token fields. The provider totals, the
// Snapshot totals and Tracker.Status must agree with want too.
func (f *fixture) assertCounts(t *testing.T, want counts) {
	t.Helper()
	snap := f.tracker.Snapshot()

	var wantNames, gotNames []string
	for name := range want {
		wantNames = append(wantNames, name)
	}
	for _, ps := range snap.Providers {
		gotNames = append(gotNames, ps.Name)
	}
	assert.ElementsMatch(t, wantNames, gotNames, "providers")

	var wantTotals ccrusage.Counts
	for _, ps := range snap.Providers {
		tasks, ok := want[ps.Name]
		if !ok {
			continue
		}
		var total ccrusage.Counts
		wantTasks := map[string]ccrusage.Counts{}
		for task, c := range tasks {
			c = withTokens(c)
			wantTasks[task] = c
			total = sum(total, c)
		}
		wantTotals = sum(wantTotals, total)
		assert.Equal(t, wantTasks, ps.Tasks, "tasks of %s", ps.Name)
		assert.Equal(t, total, ps.Counts, "counts of %s", ps.Name)

		status, err := f.tracker.Status(ps.Name)
		require.NoError(t, err)
		assert.Equal(t, total.Requests, status.Requests.Used, "Status(%q).Requests.Used", ps.Name)
		assert.Equal(t, total.Tokens, status.Tokens.Used, "Status(%q).Tokens.Used", ps.Name)
	}
	assert.Equal(t, wantTotals, snap.Totals, "snapshot totals")
	assert.Equal(t, wantTotals.UnknownUsage, snap.UnknownUsage, "snapshot unknown_usage")
	assert.Zero(t, snap.InvalidInputs, "snapshot invalid_inputs")
	assert.Zero(t, snap.LateUsage, "snapshot late_usage")
}

// withTokens returns c with Tokens set to the sum of its token fields, as
// a Tracker computes it.
func withTokens(c ccrusage.Counts) ccrusage.Counts {
	c.Tokens = c.InputTokens + c.OutputTokens + c.CacheReadTokens + c.CacheCreationTokens + c.EstimatedTokens
	return c
}

// sum returns a+b field by field.
func sum(a, b ccrusage.Counts) ccrusage.Counts {
	return ccrusage.Counts{
		Requests:            a.Requests + b.Requests,
		Failures:            a.Failures + b.Failures,
		Fallbacks:           a.Fallbacks + b.Fallbacks,
		UnknownUsage:        a.UnknownUsage + b.UnknownUsage,
		InputTokens:         a.InputTokens + b.InputTokens,
		OutputTokens:        a.OutputTokens + b.OutputTokens,
		CacheReadTokens:     a.CacheReadTokens + b.CacheReadTokens,
		CacheCreationTokens: a.CacheCreationTokens + b.CacheCreationTokens,
		EstimatedTokens:     a.EstimatedTokens + b.EstimatedTokens,
		Tokens:              a.Tokens + b.Tokens,
	}
}

// served returns the counts of one request that upstream served, with the
// usage that CCR passes on from it. CCR maps an OpenAI-format upstream's
// prompt tokens minus its cached tokens to input tokens and its cached
// tokens to cache-read tokens, and reports no cache-creation count for it.
// An Anthropic-format upstream's usage passes through unchanged.
func served(upstream *harness.Upstream) ccrusage.Counts {
	u := upstream.Usage()
	c := ccrusage.Counts{
		Requests:        1,
		InputTokens:     u.InputTokens,
		OutputTokens:    u.OutputTokens,
		CacheReadTokens: u.CacheReadInputTokens,
	}
	if upstream.Format() == harness.Anthropic {
		c.CacheCreationTokens = u.CacheCreationInputTokens
	}
	return c
}

// failed is the counts of one request that failed.
var failed = ccrusage.Counts{Failures: 1}

// fellBack is the counts of one request that CCR served from a fallback
// provider, on the provider it was routed to.
var fellBack = ccrusage.Counts{Failures: 1, Fallbacks: 1}

// message returns a one-message request for model with text.
func message(model, text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 64,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

// send sends params as a JSON request, or as a stream whose events are all
// read and accumulated into one Message when stream is set.
func send(ctx context.Context, client anthropic.Client, params anthropic.MessageNewParams, stream bool) (*anthropic.Message, error) {
	if !stream {
		return client.Messages.New(ctx, params)
	}
	events := client.Messages.NewStreaming(ctx, params)
	defer events.Close()
	var msg anthropic.Message
	for events.Next() {
		if err := msg.Accumulate(events.Current()); err != nil {
			return nil, err
		}
	}
	if err := events.Err(); err != nil {
		return nil, err
	}
	return &msg, nil
}

// upstreams returns the harness's fakes by provider name.
func upstreams(h *harness.Harness) map[string]*harness.Upstream {
	all := map[string]*harness.Upstream{}
	for _, u := range []*harness.Upstream{h.DeepSeek, h.Gemini, h.OpenRouter, h.Anthropic, h.Broken, h.RateLimited} {
		all[u.Name()] = u
	}
	return all
}

// hits returns the number of requests each fake has received.
func hits(h *harness.Harness) map[string]int {
	counts := map[string]int{}
	for name, u := range upstreams(h) {
		counts[name] = u.Hits()
	}
	return counts
}

// hitsSince returns how many requests each fake received since before was
// taken, leaving out fakes that received none.
func hitsSince(h *harness.Harness, before map[string]int) map[string]int {
	delta := map[string]int{}
	for name, n := range hits(h) {
		if d := n - before[name]; d != 0 {
			delta[name] = d
		}
	}
	return delta
}

// text returns the concatenated text blocks of msg.
func text(msg *anthropic.Message) string {
	var b strings.Builder
	for _, block := range msg.Content {
		b.WriteString(block.Text)
	}
	return b.String()
}

// modes are the two ways a test sends each request.
var modes = []struct {
	name   string
	stream bool
}{{"json", false}, {"stream", true}}

func TestCCRConfigLoad(t *testing.T) {
	h := sharedCCR(t)

	cfg, err := ccrusage.LoadCCRConfig(h.ConfigPath())
	require.NoError(t, err)

	var names []string
	for _, p := range cfg.Providers {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"deepseek", "gemini", "openrouter", "anthropic", "broken", "ratelimited", "dead"}, names)
	assert.Equal(t, ccrusage.CCRRouter{
		Default:     harness.RouteDefault,
		Background:  harness.RouteBackground,
		Think:       harness.RouteThink,
		LongContext: harness.RouteLongContext,
		WebSearch:   harness.RouteWebSearch,
	}, cfg.Router)
	assert.Equal(t, int64(harness.DefaultLongContextThreshold), cfg.LongContextThreshold)
	assert.Empty(t, cfg.Fallback)
	assert.Equal(t, h.DeepSeek.URL(), cfg.Providers[0].APIBaseURL)
}

func TestCCRRoutes(t *testing.T) {
	h := sharedCCR(t)

	// Distinct numbers per fake, so the usage also shows which provider
	// served the request.
	h.DeepSeek.SetUsage(harness.Usage{InputTokens: 101, OutputTokens: 11, CacheReadInputTokens: 1})
	h.Gemini.SetUsage(harness.Usage{InputTokens: 202, OutputTokens: 22, CacheReadInputTokens: 2})
	h.OpenRouter.SetUsage(harness.Usage{InputTokens: 303, OutputTokens: 33, CacheReadInputTokens: 3})
	h.Anthropic.SetUsage(harness.Usage{InputTokens: 404, OutputTokens: 44, CacheReadInputTokens: 4, CacheCreationInputTokens: 5})

	// longText is above the long-context threshold both in cl100k tokens,
	// as CCR counts them ("word " is one token), and in the estimate of
	// ccrusage.EstimateTokens (5 characters are 1.25 tokens).
	longText := strings.Repeat("word ", harness.DefaultLongContextThreshold+1000)
	thinking := message("claude-sonnet-4-20250514", "hello")
	thinking.MaxTokens = 2048
	thinking.Thinking = anthropic.ThinkingConfigParamOfEnabled(1024)
	// CCR tests the thinking field for JavaScript truthiness, so an object
	// that disables thinking routes to think as well.
	thinkingDisabled := message("claude-sonnet-4-20250514", "hello")
	disabled := anthropic.NewThinkingConfigDisabledParam()
	thinkingDisabled.Thinking = anthropic.ThinkingConfigParamUnion{OfDisabled: &disabled}
	webSearch := message("claude-sonnet-4-20250514", "hello")
	webSearch.Tools = []anthropic.ToolUnionParam{{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{}}}
	// A subagent names its "provider,model" in a tag at the start of the
	// second system block.
	subagent := message("claude-sonnet-4-20250514", "hello")
	subagent.System = []anthropic.TextBlockParam{
		{Text: "You are a subagent."},
		{Text: "<CCR-SUBAGENT-MODEL>" + harness.ModelOpenRouter + "</CCR-SUBAGENT-MODEL>Answer briefly."},
	}

	tests := []struct {
		name   string
		params anthropic.MessageNewParams
		route  string // the "provider,model" CCR is expected to choose
		task   string // the task type the request is recorded under
	}{
		{"default", message("claude-sonnet-4-20250514", "hello"), harness.RouteDefault, ccrusage.TaskDefault},
		{"background", message("claude-3-5-haiku-20241022", "hello"), harness.RouteBackground, ccrusage.TaskBackground},
		{"think", thinking, harness.RouteThink, ccrusage.TaskThink},
		{"think disabled", thinkingDisabled, harness.RouteThink, ccrusage.TaskThink},
		{"longContext", message("claude-sonnet-4-20250514", longText), harness.RouteLongContext, ccrusage.TaskLongContext},
		{"webSearch", webSearch, harness.RouteWebSearch, ccrusage.TaskWebSearch},
		{"explicit", message(harness.ModelOpenRouter, "hello"), harness.ModelOpenRouter, ccrusage.TaskDefault},
		{"subagent", subagent, harness.ModelOpenRouter, ccrusage.TaskDefault},
		{"anthropic", message(harness.ModelAnthropic, "hello"), harness.ModelAnthropic, ccrusage.TaskDefault},
	}
	for _, tt := range tests {
		for _, mode := range modes {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				provider, model := harness.SplitModel(tt.route)
				upstream := upstreams(h)[provider]
				require.NotNil(t, upstream, "no fake for provider %q", provider)
				f := newFixture(t, h)
				before := hits(h)

				msg, err := send(context.Background(), f.client, tt.params, mode.stream)
				require.NoError(t, err)

				assert.Equal(t, map[string]int{provider: 1}, hitsSince(h, before), "upstream hits")
				received := upstream.Received()
				last := received[len(received)-1]
				assert.Equal(t, model, last.Model, "model sent upstream")
				assert.Equal(t, mode.stream, last.Stream, "stream flag sent upstream")
				assert.Equal(t, model, string(msg.Model), "response model")
				assert.Equal(t, harness.ReplyText(provider, model), text(msg))
				assert.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)

				want := served(upstream)
				assert.Equal(t, want.InputTokens, msg.Usage.InputTokens, "response input_tokens")
				assert.Equal(t, want.OutputTokens, msg.Usage.OutputTokens, "response output_tokens")
				assert.Equal(t, want.CacheReadTokens, msg.Usage.CacheReadInputTokens, "response cache_read_input_tokens")
				assert.Equal(t, want.CacheCreationTokens, msg.Usage.CacheCreationInputTokens, "response cache_creation_input_tokens")
				assert.Equal(t, upstream.Format() == harness.Anthropic, msg.Usage.JSON.CacheCreationInputTokens.Valid(),
					"cache_creation_input_tokens present")

				f.assertCounts(t, counts{provider: {tt.task: want}})
				assert.Empty(t, f.alerts.all(), "alerts")
				assert.Equal(t, ccrusage.HealthUnknown, f.health.Status().State, "health state")
			})
		}
	}
}

func TestCCRUpstreamErrors(t *testing.T) {
	h := sharedCCR(t)

	tests := []struct {
		name     string
		model    string
		status   int
		upstream string // the fake CCR is expected to reach, "" for none
	}{
		{"status 500", harness.ModelBroken, http.StatusInternalServerError, "broken"},
		{"status 429", harness.ModelRateLimited, http.StatusTooManyRequests, "ratelimited"},
		// CCR reports a refused upstream connection as 500.
		{"connection refused", harness.ModelDead, http.StatusInternalServerError, ""},
	}
	for _, tt := range tests {
		for _, mode := range modes {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				f := newFixture(t, h)
				before := hits(h)

				_, err := send(context.Background(), f.client, message(tt.model, "hello"), mode.stream)

				var apiErr *anthropic.Error
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, tt.status, apiErr.StatusCode)
				want := map[string]int{}
				if tt.upstream != "" {
					want[tt.upstream] = 1
				}
				assert.Equal(t, want, hitsSince(h, before), "upstream hits")

				// The request is recorded on the provider it names, as a
				// failure with no tokens.
				provider, _ := harness.SplitModel(tt.model)
				f.assertCounts(t, counts{provider: {ccrusage.TaskDefault: failed}})
				// CCR itself responded, so its health is not in question.
				assert.Equal(t, ccrusage.HealthUnknown, f.health.Status().State, "health state")
				assert.Empty(t, f.alerts.all(), "alerts")
			})
		}
	}
}

func TestCCRFallback(t *testing.T) {
	// CCR 2.0.0 falls back only after an HTTP error from the upstream, and
	// tries each entry once, in order.
	h := harness.Start(t, harness.Options{
		Fallback: map[string][]string{"default": {harness.ModelBroken, harness.ModelOpenRouter}},
	})
	h.OpenRouter.SetUsage(harness.Usage{InputTokens: 303, OutputTokens: 33, CacheReadInputTokens: 3})

	tests := []struct {
		name  string
		model string
		hits  map[string]int
	}{
		{"rate limited", harness.ModelRateLimited, map[string]int{"ratelimited": 1, "broken": 1, "openrouter": 1}},
		// The routed provider is also the first fallback entry, so CCR
		// tries it twice.
		{"status 500", harness.ModelBroken, map[string]int{"broken": 2, "openrouter": 1}},
	}
	for _, tt := range tests {
		for _, mode := range modes {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				f := newFixture(t, h)
				before := hits(h)

				msg, err := send(context.Background(), f.client, message(tt.model, "hello"), mode.stream)
				require.NoError(t, err)

				provider, model := harness.SplitModel(harness.ModelOpenRouter)
				assert.Equal(t, tt.hits, hitsSince(h, before), "upstream hits")
				assert.Equal(t, model, string(msg.Model), "response model is the fallback model")
				assert.Equal(t, harness.ReplyText(provider, model), text(msg))

				// The client sees one request, served by the fallback
				// model. It counts as a fallback on the routed provider
				// and as served, with the usage, on the serving one. The
				// fallback entry that failed in between is invisible to
				// the client and not counted.
				routed, _ := harness.SplitModel(tt.model)
				f.assertCounts(t, counts{
					routed:   {ccrusage.TaskDefault: fellBack},
					provider: {ccrusage.TaskDefault: served(h.OpenRouter)},
				})
			})
		}
	}
	t.Run("stream closed early", func(t *testing.T) {
		f := newFixture(t, h)
		release := h.OpenRouter.HoldStreams()
		t.Cleanup(release)

		events := f.client.Messages.NewStreaming(context.Background(), message(harness.ModelRateLimited, "hello"))
		require.True(t, events.Next(), "first event: %v", events.Err())
		_, model := harness.SplitModel(harness.ModelOpenRouter)
		assert.Equal(t, model, string(events.Current().Message.Model), "message_start model")
		require.NoError(t, events.Close())

		// message_start names the fallback model but reports zero usage,
		// so the serving provider counts a request with unknown usage,
		// which keeps its estimate.
		f.assertCounts(t, counts{
			"ratelimited": {ccrusage.TaskDefault: fellBack},
			"openrouter": {ccrusage.TaskDefault: {
				Requests: 1, UnknownUsage: 1, EstimatedTokens: ccrusage.EstimateTokens("hello"),
			}},
		})
	})
	for _, mode := range modes {
		t.Run("connection refused/"+mode.name, func(t *testing.T) {
			// A refused connection is no HTTP error, so CCR does not fall
			// back.
			f := newFixture(t, h)
			before := hits(h)

			_, err := send(context.Background(), f.client, message(harness.ModelDead, "hello"), mode.stream)

			var apiErr *anthropic.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusInternalServerError, apiErr.StatusCode)
			assert.Equal(t, map[string]int{}, hitsSince(h, before), "upstream hits")
			f.assertCounts(t, counts{"dead": {ccrusage.TaskDefault: failed}})
		})
	}
}

func TestCCRAuth(t *testing.T) {
	h := sharedCCR(t)
	f := newFixture(t, h)
	client := f.newClient(option.WithAPIKey("wrong-key"))
	before := hits(h)

	_, err := client.Messages.New(context.Background(), message("claude-sonnet-4-20250514", "hello"))

	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, map[string]int{}, hitsSince(h, before), "upstream hits")
	f.assertCounts(t, counts{"deepseek": {ccrusage.TaskDefault: failed}})
	assert.Equal(t, ccrusage.HealthUnknown, f.health.Status().State, "health state")
}

func TestCCRClientRetries(t *testing.T) {
	h := sharedCCR(t)
	f := newFixture(t, h)
	// The SDK retries a 500 twice by default, each time as a new HTTP
	// request. SDK v2.17.0 waits 0.5 and 1 second, less up to a quarter
	// of jitter, before the retries.
	client := f.newClient(option.WithMaxRetries(2))
	before := hits(h)

	_, err := client.Messages.New(context.Background(), message(harness.ModelBroken, "hello"))

	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusInternalServerError, apiErr.StatusCode)
	assert.Equal(t, map[string]int{"broken": 3}, hitsSince(h, before), "upstream hits")
	// The transport records every attempt, so each counts as a failure.
	f.assertCounts(t, counts{"broken": {ccrusage.TaskDefault: times(failed, 3)}})
}

func TestCCRStreamClosedEarly(t *testing.T) {
	h := sharedCCR(t)
	h.DeepSeek.SetUsage(harness.Usage{InputTokens: 101, OutputTokens: 11, CacheReadInputTokens: 1})
	h.Anthropic.SetUsage(harness.Usage{InputTokens: 404, OutputTokens: 44, CacheReadInputTokens: 4, CacheCreationInputTokens: 5})
	estimate := ccrusage.EstimateTokens("hello")

	tests := []struct {
		name     string
		model    string
		upstream *harness.Upstream
		want     counts
	}{
		// CCR's message_start for an OpenAI-format upstream reports zero
		// usage. Zero usage is not billed, so the request keeps its
		// estimate and counts as served with unknown usage.
		{"openai format", "claude-sonnet-4-20250514", h.DeepSeek, counts{"deepseek": {ccrusage.TaskDefault: {
			Requests: 1, UnknownUsage: 1, EstimatedTokens: estimate,
		}}}},
		// The Anthropic-format message_start passes through with the
		// input and cache counts and an output count of 1, which are
		// billed because the final message_delta never arrives.
		{"anthropic format", harness.ModelAnthropic, h.Anthropic, counts{"anthropic": {ccrusage.TaskDefault: {
			Requests: 1, InputTokens: 404, OutputTokens: 1, CacheReadTokens: 4, CacheCreationTokens: 5,
		}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, h)
			release := tt.upstream.HoldStreams()
			t.Cleanup(release)

			events := f.client.Messages.NewStreaming(context.Background(), message(tt.model, "hello"))
			require.True(t, events.Next(), "first event: %v", events.Err())
			assert.Equal(t, "message_start", string(events.Current().Type), "first event")
			// Before the body is closed, the request is in flight with
			// its estimate.
			provider := tt.upstream.Name()
			f.assertCounts(t, counts{provider: {ccrusage.TaskDefault: {Requests: 1, EstimatedTokens: estimate}}})

			require.NoError(t, events.Close())
			f.assertCounts(t, tt.want)

			// Neither a second Close nor the rest of the stream, which the
			// fake sends once released, settles the request again.
			_ = events.Close()
			release()
			f.assertCounts(t, tt.want)
		})
	}
}

// TestCCRDown stops the shared CCR. It starts CCR again before it returns,
// so tests that run after it, with -shuffle too, find CCR running.
func TestCCRDown(t *testing.T) {
	h := sharedCCR(t)
	h.DeepSeek.SetUsage(harness.Usage{InputTokens: 101, OutputTokens: 11, CacheReadInputTokens: 1})
	f := newFixture(t, h)
	ctx := context.Background()

	// The first probe finds CCR available, which sends no alert.
	require.Equal(t, ccrusage.HealthAvailable, f.health.Check(ctx).State, "health before the stop")

	require.NoError(t, h.Stop())
	t.Cleanup(func() {
		// Restarts CCR when a failed check ended the test early.
		if h.PID() == 0 {
			require.NoError(t, h.Start())
		}
	})

	before := hits(h)
	for i, mode := range modes {
		_, err := send(ctx, f.client, message("claude-sonnet-4-20250514", "hello"), mode.stream)

		require.Error(t, err, mode.name)
		assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "%s: error is ECONNREFUSED: %v", mode.name, err)
		var apiErr *anthropic.Error
		assert.False(t, errors.As(err, &apiErr), "%s: no HTTP response, so no API error", mode.name)
		f.assertCounts(t, counts{"deepseek": {ccrusage.TaskDefault: {Failures: int64(i + 1)}}})
	}
	assert.Equal(t, map[string]int{}, hitsSince(h, before), "upstream hits")

	// The transport reported the refused connections, so the checker is
	// unavailable without a probe. The clock has not moved, so Check
	// returns the report instead of probing.
	status := f.health.Status()
	assert.Equal(t, ccrusage.HealthUnavailable, status.State, "health after the failed requests")
	assert.Contains(t, status.Error, "connection refused", "health error")
	assert.Equal(t, baseTime, status.CheckedAt, "health checked at")
	assert.Equal(t, ccrusage.HealthUnavailable, f.health.Check(ctx).State, "cached health")

	require.NoError(t, h.Start())
	// The report is kept until the cached result is older than the
	// interval. Then the next probe finds CCR again.
	assert.Equal(t, ccrusage.HealthUnavailable, f.health.Check(ctx).State, "health before the next probe")
	f.clock.Advance(ccrusage.DefaultHealthInterval)
	assert.Equal(t, ccrusage.HealthAvailable, f.health.Check(ctx).State, "health after the next probe")

	msg, err := send(ctx, f.client, message("claude-sonnet-4-20250514", "hello"), false)
	require.NoError(t, err)
	_, model := harness.SplitModel(harness.RouteDefault)
	assert.Equal(t, model, string(msg.Model))
	want := served(h.DeepSeek)
	want.Failures = 2
	f.assertCounts(t, counts{"deepseek": {ccrusage.TaskDefault: want}})

	alerts := f.alerts.all()
	require.Len(t, alerts, 2, "alerts: %+v", alerts)
	assert.Equal(t, ccrusage.AlertHealth, alerts[0].Kind, "first alert kind")
	assert.Equal(t, ccrusage.LevelCritical, alerts[0].Level, "first alert level")
	assert.Equal(t, baseTime, alerts[0].Time, "first alert time")
	assert.Contains(t, alerts[0].Message, "connection refused", "first alert message")
	assert.Equal(t, ccrusage.AlertHealth, alerts[1].Kind, "second alert kind")
	assert.Equal(t, ccrusage.LevelInfo, alerts[1].Level, "second alert level")
	assert.Equal(t, ccrusage.LevelCritical, alerts[1].Previous, "second alert previous level")
	assert.Equal(t, baseTime.Add(ccrusage.DefaultHealthInterval), alerts[1].Time, "second alert time")
}

// TestCCRKilledMidStream stops the shared CCR while a stream is open. CCR
// 2.0.0 does not exit on SIGTERM while a stream is open, so the harness
// kills it after 5 seconds, and the test takes that long. It starts CCR
// again before it returns.
func TestCCRKilledMidStream(t *testing.T) {
	h := sharedCCR(t)
	f := newFixture(t, h)
	release := h.DeepSeek.HoldStreams()
	t.Cleanup(release)
	t.Cleanup(func() {
		if h.PID() == 0 {
			require.NoError(t, h.Start())
		}
	})

	events := f.client.Messages.NewStreaming(context.Background(), message("claude-sonnet-4-20250514", "hello"))
	defer events.Close()
	require.True(t, events.Next(), "first event: %v", events.Err())
	require.NoError(t, h.Stop())
	for events.Next() {
		// Read the events that CCR sent before it died.
	}

	// The stream breaks off before its usage. The request reached the
	// provider, so it stays a served request, and its estimate replaces
	// the usage that never came.
	assert.ErrorIs(t, events.Err(), io.ErrUnexpectedEOF, "stream error")
	f.assertCounts(t, counts{"deepseek": {ccrusage.TaskDefault: {
		Requests: 1, UnknownUsage: 1, EstimatedTokens: ccrusage.EstimateTokens("hello"),
	}}})
	require.NoError(t, h.Start())
}

func TestCCRMetricsHandler(t *testing.T) {
	h := sharedCCR(t)
	h.DeepSeek.SetUsage(harness.Usage{InputTokens: 101, OutputTokens: 11, CacheReadInputTokens: 1})
	f := newFixture(t, h)
	ctx := context.Background()
	_, err := send(ctx, f.client, message("claude-sonnet-4-20250514", "hello"), false)
	require.NoError(t, err)
	_, err = send(ctx, f.client, message(harness.ModelBroken, "hello"), true)
	require.Error(t, err)

	server := httptest.NewServer(ccrusage.NewMetricsHandler(f.tracker, f.health))
	t.Cleanup(server.Close)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := client.Get(server.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got ccrusage.Metrics
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))

	// The handler's Snapshot is the Tracker's, field for field, because
	// nothing was recorded and the clock did not move since.
	assert.Equal(t, f.tracker.Snapshot(), got.Snapshot, "snapshot")
	f.assertCounts(t, counts{
		"deepseek": {ccrusage.TaskDefault: served(h.DeepSeek)},
		"broken":   {ccrusage.TaskDefault: failed},
	})
	require.NotNil(t, got.CCR, "ccr")
	assert.Equal(t, ccrusage.HealthAvailable, got.CCR.State, "ccr state")
	assert.Equal(t, "ok", got.CCR.CCRStatus, "ccr status")
	assert.Equal(t, h.URL(), got.CCR.URL, "ccr url")
	assert.Equal(t, baseTime, got.CCR.CheckedAt, "ccr checked_at")
}

func TestCCRCountTokensUncounted(t *testing.T) {
	h := sharedCCR(t)
	f := newFixture(t, h)
	before := hits(h)

	// CCR 2.0.0 counts the tokens itself, without an upstream and without
	// its Router, so the transport records nothing.
	count, err := f.client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{
		Model:    anthropic.Model("claude-sonnet-4-20250514"),
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	})
	require.NoError(t, err)

	assert.Positive(t, count.InputTokens, "input_tokens")
	assert.Equal(t, map[string]int{}, hitsSince(h, before), "upstream hits")
	f.assertCounts(t, counts{})
}

func TestCCRConcurrentRequests(t *testing.T) {
	h := sharedCCR(t)
	h.DeepSeek.SetUsage(harness.Usage{InputTokens: 101, OutputTokens: 11, CacheReadInputTokens: 1})
	h.Gemini.SetUsage(harness.Usage{InputTokens: 202, OutputTokens: 22, CacheReadInputTokens: 2})
	h.Anthropic.SetUsage(harness.Usage{InputTokens: 404, OutputTokens: 44, CacheReadInputTokens: 4, CacheCreationInputTokens: 5})
	f := newFixture(t, h)
	const repeats = 3 // of each request, in each mode

	requests := []struct {
		model string
		ok    bool // whether CCR serves it
	}{
		{"claude-sonnet-4-20250514", true},  // deepseek, default
		{"claude-3-5-haiku-20241022", true}, // gemini, background
		{harness.ModelAnthropic, true},      // anthropic, default
		{harness.ModelBroken, false},        // broken, default
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(requests)*len(modes)*repeats)
	for _, r := range requests {
		for _, mode := range modes {
			for range repeats {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := send(context.Background(), f.client, message(r.model, "hello"), mode.stream)
					if (err == nil) != r.ok {
						errs <- fmt.Errorf("%s (stream %v): unexpected error %v", r.model, mode.stream, err)
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	n := int64(len(modes) * repeats)
	f.assertCounts(t, counts{
		"deepseek":  {ccrusage.TaskDefault: times(served(h.DeepSeek), n)},
		"gemini":    {ccrusage.TaskBackground: times(served(h.Gemini), n)},
		"anthropic": {ccrusage.TaskDefault: times(served(h.Anthropic), n)},
		"broken":    {ccrusage.TaskDefault: times(failed, n)},
	})
}

// times returns c with every count multiplied by n.
func times(c ccrusage.Counts, n int64) ccrusage.Counts {
	var total ccrusage.Counts
	for range n {
		total = sum(total, c)
	}
	return total
}
