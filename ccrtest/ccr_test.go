package ccrtest_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// countingTransport counts the requests a client sends and the responses
// it receives.
//
// TODO: replace with ccrusage's RoundTripper once it exists, so these tests
// check the usage it records.
type countingTransport struct {
	base      http.RoundTripper
	requests  atomic.Int64
	responses atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		c.responses.Add(1)
	}
	return resp, err
}

// newClient returns an SDK client for the CCR at url, with no retries, so
// each call is one HTTP request, and a transport of its own, so no test
// reuses another's connections.
func newClient(t *testing.T, url, apiKey string) (anthropic.Client, *countingTransport) {
	t.Helper()
	base := &http.Transport{Proxy: nil}
	t.Cleanup(base.CloseIdleConnections)
	transport := &countingTransport{base: base}
	client := anthropic.NewClient(
		option.WithoutEnvironmentDefaults(), // ignore ANTHROPIC_* variables of the machine
		option.WithBaseURL(url),
		option.WithAPIKey(apiKey),
		// The deadline keeps a stuck CCR or upstream from hanging the test.
		option.WithHTTPClient(&http.Client{Transport: transport, Timeout: 30 * time.Second}),
		option.WithMaxRetries(0),
	)
	return client, transport
}

// message returns a one-message request for model with text.
func message(model, text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 64,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

// send sends params as a JSON request, or as a stream whose events are
// accumulated into one Message when stream is set.
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

func TestCCRRoutes(t *testing.T) {
	h := sharedCCR(t)

	// Distinct numbers per fake, so the usage also shows which provider
	// served the request.
	h.DeepSeek.SetUsage(harness.Usage{InputTokens: 101, OutputTokens: 11, CacheReadInputTokens: 1})
	h.Gemini.SetUsage(harness.Usage{InputTokens: 202, OutputTokens: 22, CacheReadInputTokens: 2})
	h.OpenRouter.SetUsage(harness.Usage{InputTokens: 303, OutputTokens: 33, CacheReadInputTokens: 3})
	h.Anthropic.SetUsage(harness.Usage{InputTokens: 404, OutputTokens: 44, CacheReadInputTokens: 4, CacheCreationInputTokens: 5})

	// longText is well above the long-context threshold in cl100k tokens
	// ("word " is one token).
	longText := strings.Repeat("word ", harness.DefaultLongContextThreshold+1000)
	thinking := message("claude-sonnet-4-20250514", "hello")
	thinking.MaxTokens = 2048
	thinking.Thinking = anthropic.ThinkingConfigParamOfEnabled(1024)
	webSearch := message("claude-sonnet-4-20250514", "hello")
	webSearch.Tools = []anthropic.ToolUnionParam{{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{}}}

	tests := []struct {
		name   string
		params anthropic.MessageNewParams
		route  string // the "provider,model" CCR is expected to choose
	}{
		{"default", message("claude-sonnet-4-20250514", "hello"), harness.RouteDefault},
		{"background", message("claude-3-5-haiku-20241022", "hello"), harness.RouteBackground},
		{"think", thinking, harness.RouteThink},
		{"longContext", message("claude-sonnet-4-20250514", longText), harness.RouteLongContext},
		{"webSearch", webSearch, harness.RouteWebSearch},
		{"explicit", message(harness.ModelOpenRouter, "hello"), harness.ModelOpenRouter},
		{"anthropic", message(harness.ModelAnthropic, "hello"), harness.ModelAnthropic},
	}
	for _, tt := range tests {
		for _, mode := range modes {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				provider, model := harness.SplitModel(tt.route)
				upstream := upstreams(h)[provider]
				require.NotNil(t, upstream, "no fake for provider %q", provider)
				client, transport := newClient(t, h.URL(), h.APIKey())
				before := hits(h)

				msg, err := send(context.Background(), client, tt.params, mode.stream)
				require.NoError(t, err)

				assert.Equal(t, map[string]int{provider: 1}, hitsSince(h, before), "upstream hits")
				received := upstream.Received()
				last := received[len(received)-1]
				assert.Equal(t, model, last.Model, "model sent upstream")
				assert.Equal(t, mode.stream, last.Stream, "stream flag sent upstream")
				assert.Equal(t, int64(1), transport.requests.Load(), "client requests")

				assert.Equal(t, model, string(msg.Model), "response model")
				assert.Equal(t, harness.ReplyText(provider, model), text(msg))
				assert.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)

				want := upstream.Usage()
				if upstream.Format() == harness.OpenAI {
					// OpenAI usage has no cache-creation count, and CCR
					// leaves the field out.
					want.CacheCreationInputTokens = 0
				}
				got := harness.Usage{
					InputTokens:              msg.Usage.InputTokens,
					OutputTokens:             msg.Usage.OutputTokens,
					CacheReadInputTokens:     msg.Usage.CacheReadInputTokens,
					CacheCreationInputTokens: msg.Usage.CacheCreationInputTokens,
				}
				assert.Equal(t, want, got, "usage")
				assert.Equal(t, upstream.Format() == harness.Anthropic, msg.Usage.JSON.CacheCreationInputTokens.Valid(),
					"cache_creation_input_tokens present")
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
		provider string // the fake CCR is expected to reach, "" for none
	}{
		{"status 500", harness.ModelBroken, http.StatusInternalServerError, "broken"},
		{"status 429", harness.ModelRateLimited, http.StatusTooManyRequests, "ratelimited"},
		// CCR reports a refused upstream connection as 500.
		{"connection refused", harness.ModelDead, http.StatusInternalServerError, ""},
	}
	for _, tt := range tests {
		for _, mode := range modes {
			t.Run(tt.name+"/"+mode.name, func(t *testing.T) {
				client, transport := newClient(t, h.URL(), h.APIKey())
				before := hits(h)

				_, err := send(context.Background(), client, message(tt.model, "hello"), mode.stream)

				var apiErr *anthropic.Error
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, tt.status, apiErr.StatusCode)
				want := map[string]int{}
				if tt.provider != "" {
					want[tt.provider] = 1
				}
				assert.Equal(t, want, hitsSince(h, before), "upstream hits")
				assert.Equal(t, int64(1), transport.requests.Load(), "client requests")
				assert.Equal(t, int64(1), transport.responses.Load(), "client responses")
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

	for _, mode := range modes {
		t.Run("rate limited/"+mode.name, func(t *testing.T) {
			client, transport := newClient(t, h.URL(), h.APIKey())
			before := hits(h)

			msg, err := send(context.Background(), client, message(harness.ModelRateLimited, "hello"), mode.stream)
			require.NoError(t, err)

			provider, model := harness.SplitModel(harness.ModelOpenRouter)
			assert.Equal(t, map[string]int{"ratelimited": 1, "broken": 1, "openrouter": 1}, hitsSince(h, before), "upstream hits")
			assert.Equal(t, model, string(msg.Model), "response model is the fallback model")
			assert.Equal(t, harness.ReplyText(provider, model), text(msg))
			assert.Equal(t, h.OpenRouter.Usage().OutputTokens, msg.Usage.OutputTokens)
			assert.Equal(t, int64(1), transport.requests.Load(), "client requests")
		})
		t.Run("connection refused/"+mode.name, func(t *testing.T) {
			// A refused connection is no HTTP error, so CCR does not fall
			// back.
			client, _ := newClient(t, h.URL(), h.APIKey())
			before := hits(h)

			_, err := send(context.Background(), client, message(harness.ModelDead, "hello"), mode.stream)

			var apiErr *anthropic.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusInternalServerError, apiErr.StatusCode)
			assert.Equal(t, map[string]int{}, hitsSince(h, before), "upstream hits")
		})
	}
}

func TestCCRAuth(t *testing.T) {
	h := sharedCCR(t)
	client, _ := newClient(t, h.URL(), "wrong-key")
	before := hits(h)

	_, err := client.Messages.New(context.Background(), message("claude-sonnet-4-20250514", "hello"))

	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, map[string]int{}, hitsSince(h, before), "upstream hits")
}

// TestCCRDown stops the shared CCR. It starts CCR again before it returns,
// so tests that run after it, with -shuffle too, find CCR running.
func TestCCRDown(t *testing.T) {
	h := sharedCCR(t)
	require.NoError(t, h.Stop())
	t.Cleanup(func() {
		// Restarts CCR when a failed check ended the test early.
		if h.PID() == 0 {
			require.NoError(t, h.Start())
		}
	})

	for _, mode := range modes {
		t.Run("stopped/"+mode.name, func(t *testing.T) {
			client, transport := newClient(t, h.URL(), h.APIKey())
			before := hits(h)

			_, err := send(context.Background(), client, message("claude-sonnet-4-20250514", "hello"), mode.stream)

			require.Error(t, err)
			assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "error is ECONNREFUSED: %v", err)
			var apiErr *anthropic.Error
			assert.False(t, errors.As(err, &apiErr), "no HTTP response, so no API error")
			assert.Equal(t, int64(1), transport.requests.Load(), "client requests")
			assert.Equal(t, int64(0), transport.responses.Load(), "client responses")
			assert.Equal(t, map[string]int{}, hitsSince(h, before), "upstream hits")
		})
	}

	require.NoError(t, h.Start())
	t.Run("started again", func(t *testing.T) {
		client, _ := newClient(t, h.URL(), h.APIKey())

		msg, err := client.Messages.New(context.Background(), message("claude-sonnet-4-20250514", "hello"))
		require.NoError(t, err)

		_, model := harness.SplitModel(harness.RouteDefault)
		assert.Equal(t, model, string(msg.Model))
	})
}
