package ccrusage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// messagesServer is an httptest server on 127.0.0.1 that plays CCR. It
// records each request it receives and responds with respond.
type messagesServer struct {
	*httptest.Server

	mu       sync.Mutex // guards received
	received []receivedRequest
}

type receivedRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

func newMessagesServer(t *testing.T, respond http.HandlerFunc) *messagesServer {
	t.Helper()
	f := &messagesServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.received = append(f.received, receivedRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		f.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *messagesServer) lastRequest(t *testing.T) receivedRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.received)
	return f.received[len(f.received)-1]
}

// writeMessagesJSON writes body as an application/json response.
func writeMessagesJSON(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// respondSSE writes stream as a text/event-stream response, flushing after each
// event.
func respondSSE(stream string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for _, event := range strings.SplitAfter(stream, "\n\n") {
			_, _ = io.WriteString(w, event)
			w.(http.Flusher).Flush()
		}
	}
}

// healthRecorder is a HealthReporter that keeps the errors it receives.
type healthRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (h *healthRecorder) ReportUnavailable(err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

func (h *healthRecorder) reported() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errs...)
}

// testTransport returns a Tracker on a manual clock and a client whose
// Transport records into it with the test config.
func testTransport(t *testing.T) (*Tracker, *Transport, *http.Client) {
	t.Helper()
	tr, err := New(Config{Clock: NewManualClock(base)})
	require.NoError(t, err)
	transport := &Transport{Tracker: tr, Config: mustParseConfig(t, testConfigJSON), Base: &http.Transport{}}
	t.Cleanup(transport.CloseIdleConnections)
	return tr, transport, &http.Client{Transport: transport}
}

// taskCounts returns the counts of provider and task today, or zero
// counts if none were recorded.
func taskCounts(t *testing.T, tr *Tracker, provider, task string) Counts {
	t.Helper()
	for _, p := range tr.Snapshot().Providers {
		if p.Name == provider {
			return p.Tasks[task]
		}
	}
	return Counts{}
}

func providerNames(tr *Tracker) []string {
	var names []string
	for _, p := range tr.Snapshot().Providers {
		names = append(names, p.Name)
	}
	return names
}

// post sends body to url with the headers Claude Code sends to CCR and
// returns the response with its body read.
func post(t *testing.T, ctx context.Context, client *http.Client, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer ccr-test-key")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, got
}

const jsonReply = `{"id":"chatcmpl-1","type":"message","role":"assistant","model":"deepseek-chat",` +
	`"content":[{"type":"text","text":"fake reply"}],"stop_reason":"end_turn","stop_sequence":null,` +
	`"usage":{"input_tokens":120,"output_tokens":42,"cache_read_input_tokens":20}}`

func TestTransportJSON(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, _, client := testTransport(t)
	body := messagesBody("claude-sonnet-4-20250514")

	resp, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", body)

	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, jsonReply, string(got), "response body")
	assert.Equal(t, int64(len(jsonReply)), resp.ContentLength)
	sent := ccr.lastRequest(t)
	assert.Equal(t, body, string(sent.body), "request body")
	assert.Equal(t, "Bearer ccr-test-key", sent.header.Get("Authorization"))

	c := taskCounts(t, tr, "deepseek", TaskDefault)
	assert.Equal(t, int64(1), c.Requests)
	assert.Equal(t, int64(120), c.InputTokens)
	assert.Equal(t, int64(42), c.OutputTokens)
	assert.Equal(t, int64(20), c.CacheReadTokens)
	assert.Equal(t, int64(0), c.EstimatedTokens)
	assert.Equal(t, int64(0), c.UnknownUsage)
}

func TestTransportSSE(t *testing.T) {
	ccr := newMessagesServer(t, respondSSE(anthropicStream))
	tr, _, client := testTransport(t)
	body := messagesBody("anthropic,claude-sonnet-4-20250514", `"stream":true`)

	resp, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", body)

	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, anthropicStream, string(got), "response body")
	assert.Equal(t, body, string(ccr.lastRequest(t).body), "request body")

	c := taskCounts(t, tr, "anthropic", TaskDefault)
	assert.Equal(t, int64(1), c.Requests)
	assert.Equal(t, int64(120), c.InputTokens)
	assert.Equal(t, int64(42), c.OutputTokens)
	assert.Equal(t, int64(20), c.CacheReadTokens)
	assert.Equal(t, int64(8), c.CacheCreationTokens)
}

func TestTransportSSEOpenAIFormat(t *testing.T) {
	ccr := newMessagesServer(t, respondSSE(openAIStream))
	tr, _, client := testTransport(t)

	_, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4", `"stream":true`, `"thinking":{"type":"disabled"}`))

	assert.Equal(t, openAIStream, string(got))
	c := taskCounts(t, tr, "deepseek", TaskThink)
	assert.Equal(t, int64(120), c.InputTokens)
	assert.Equal(t, int64(42), c.OutputTokens)
}

func TestTransportSSENotDelayed(t *testing.T) {
	first := "event: message_start\n" + `data: {"type":"message_start","message":{"model":"deepseek-chat","usage":{"input_tokens":7,"output_tokens":0}}}` + "\n\n"
	rest := "event: message_delta\n" + `data: {"type":"message_delta","usage":{"output_tokens":3}}` + "\n\n"
	proceed := make(chan struct{})
	ccr := newMessagesServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, first)
		w.(http.Flusher).Flush()
		<-proceed
		_, _ = io.WriteString(w, rest)
	})
	tr, _, client := testTransport(t)

	req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", strings.NewReader(messagesBody("claude-sonnet-4")))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	// The first event arrives while the server still holds back the rest.
	buf := make([]byte, len(first))
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	assert.Equal(t, first, string(buf))
	assert.Equal(t, int64(2), taskCounts(t, tr, "deepseek", TaskDefault).EstimatedTokens, "not settled yet")

	close(proceed)
	tail, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, rest, string(tail))
	c := taskCounts(t, tr, "deepseek", TaskDefault)
	assert.Equal(t, int64(7), c.InputTokens)
	assert.Equal(t, int64(3), c.OutputTokens)
}

func TestTransportSSEEarlyClose(t *testing.T) {
	ccr := newMessagesServer(t, respondSSE(anthropicStream))
	tr, _, client := testTransport(t)

	req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", strings.NewReader(messagesBody("anthropic,claude-sonnet-4-20250514")))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	cut := strings.Index(anthropicStream, "event: content_block_start")
	_, err = io.ReadFull(resp.Body, make([]byte, cut))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())

	c := taskCounts(t, tr, "anthropic", TaskDefault)
	assert.Equal(t, int64(1), c.Requests)
	assert.Equal(t, int64(120), c.InputTokens)
	assert.Equal(t, int64(1), c.OutputTokens, "only message_start was read")
	assert.Equal(t, int64(0), c.UnknownUsage)
}

func TestTransportUnknownUsage(t *testing.T) {
	tests := []struct {
		name    string
		respond http.HandlerFunc
	}{
		{"zero SSE usage", respondSSE(zeroStream)},
		{"zero JSON usage", writeMessagesJSON(http.StatusOK, `{"model":"deepseek-chat","usage":{"input_tokens":0,"output_tokens":0}}`)},
		{"missing JSON usage", writeMessagesJSON(http.StatusOK, `{"model":"deepseek-chat"}`)},
		{"not JSON", writeMessagesJSON(http.StatusOK, `<html>ok</html>`)},
		{"empty body", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccr := newMessagesServer(t, tt.respond)
			tr, _, client := testTransport(t)

			post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

			c := taskCounts(t, tr, "deepseek", TaskDefault)
			assert.Equal(t, int64(1), c.Requests)
			assert.Equal(t, int64(1), c.UnknownUsage)
			assert.Equal(t, int64(2), c.EstimatedTokens, "the estimate of \"hello\" stays")
			assert.Equal(t, int64(0), c.Failures)
		})
	}
}

func TestTransportErrorStatus(t *testing.T) {
	const reply = `{"error":{"message":"Error from provider(deepseek,deepseek-chat: 500)","type":"api_error","code":"provider_response_error"}}`
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusNotFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			ccr := newMessagesServer(t, writeMessagesJSON(status, reply))
			tr, transport, client := testTransport(t)
			health := &healthRecorder{}
			transport.Health = health

			resp, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

			assert.Equal(t, status, resp.StatusCode)
			assert.Equal(t, reply, string(got))
			c := taskCounts(t, tr, "deepseek", TaskDefault)
			assert.Equal(t, int64(0), c.Requests)
			assert.Equal(t, int64(1), c.Failures)
			assert.Equal(t, int64(0), c.Tokens)
			assert.Empty(t, health.reported(), "CCR answered, so it is up")
		})
	}
}

// closedPortURL returns the URL of a 127.0.0.1 port that nothing listens
// on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

func TestTransportConnectionRefused(t *testing.T) {
	tr, transport, client := testTransport(t)
	health := &healthRecorder{}
	transport.Health = health

	req, err := http.NewRequest(http.MethodPost, closedPortURL(t)+"/v1/messages", strings.NewReader(messagesBody("claude-sonnet-4")))
	require.NoError(t, err)
	_, err = client.Do(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)

	c := taskCounts(t, tr, "deepseek", TaskDefault)
	assert.Equal(t, int64(0), c.Requests)
	assert.Equal(t, int64(1), c.Failures)
	reported := health.reported()
	require.Len(t, reported, 1)
	assert.ErrorIs(t, reported[0], syscall.ECONNREFUSED)
}

func TestTransportConnectionDropped(t *testing.T) {
	ccr := newMessagesServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	tr, transport, client := testTransport(t)
	health := &healthRecorder{}
	transport.Health = health

	req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", strings.NewReader(messagesBody("claude-sonnet-4")))
	require.NoError(t, err)
	_, err = client.Do(req)
	require.Error(t, err)

	assert.Equal(t, int64(1), taskCounts(t, tr, "deepseek", TaskDefault).Failures)
	reported := health.reported()
	require.Len(t, reported, 1)
	assert.ErrorIs(t, reported[0], io.EOF)
}

func TestTransportConnectionDroppedMidStream(t *testing.T) {
	ccr := newMessagesServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// A chunked event stream cut off after message_start.
		event := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"deepseek-chat\",\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n"
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(event), event)
		buf.Flush()
	})
	tr, transport, client := testTransport(t)
	health := &healthRecorder{}
	transport.Health = health

	req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", strings.NewReader(messagesBody("claude-sonnet-4")))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err)
	resp.Body.Close()

	counts := taskCounts(t, tr, "deepseek", TaskDefault)
	assert.Equal(t, int64(1), counts.Requests)
	assert.Equal(t, int64(1), counts.UnknownUsage)
	reported := health.reported()
	require.Len(t, reported, 1)
	assert.ErrorIs(t, reported[0], io.ErrUnexpectedEOF)
}

func TestTransportCanceledNotReported(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, transport, client := testTransport(t)
	health := &healthRecorder{}
	transport.Health = health
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ccr.URL+"/v1/messages", strings.NewReader(messagesBody("claude-sonnet-4")))
	require.NoError(t, err)
	_, err = client.Do(req)
	require.ErrorIs(t, err, context.Canceled)

	assert.Equal(t, int64(1), taskCounts(t, tr, "deepseek", TaskDefault).Failures)
	assert.Empty(t, health.reported())
}

// plainReader hides the type of its reader, so that http.NewRequest cannot
// tell the body's length and sends it chunked.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

func TestTransportBodyOverBound(t *testing.T) {
	// A haiku request that would be background if it were classified.
	body := messagesBody("claude-3-5-haiku", fmt.Sprintf(`"system":%q`, strings.Repeat("s", 1000)))
	tests := []struct {
		name string
		body io.Reader
	}{
		{"known length", strings.NewReader(body)},
		{"chunked", plainReader{strings.NewReader(body)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
			tr, transport, client := testTransport(t)
			// The bound applies to the response too, which must fit.
			transport.MaxBodyBytes = int64(len(jsonReply))
			require.Greater(t, len(body), len(jsonReply))

			req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", tt.body)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())

			assert.Equal(t, jsonReply, string(got))
			assert.Equal(t, body, string(ccr.lastRequest(t).body), "request body")
			c := taskCounts(t, tr, ProviderUnknown, TaskDefault)
			assert.Equal(t, int64(1), c.Requests)
			assert.Equal(t, int64(120), c.InputTokens, "the usage is still read")
			assert.Equal(t, []string{ProviderUnknown}, providerNames(tr))
		})
	}
}

func TestTransportMaxBodyBytesMaxInt(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, transport, client := testTransport(t)
	transport.MaxBodyBytes = math.MaxInt64
	body := messagesBody("claude-3-5-haiku")

	post(t, context.Background(), client, ccr.URL+"/v1/messages", body)

	assert.Equal(t, body, string(ccr.lastRequest(t).body))
	// Routed to gemini, but the reply's model is deepseek's.
	assert.Equal(t, int64(1), taskCounts(t, tr, "gemini", TaskBackground).Fallbacks)
	assert.Equal(t, int64(120), taskCounts(t, tr, "deepseek", TaskBackground).InputTokens)
}

func TestTransportResponseOverBound(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, transport, client := testTransport(t)
	transport.MaxBodyBytes = int64(len(jsonReply) - 1)

	_, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

	assert.Equal(t, jsonReply, string(got))
	c := taskCounts(t, tr, "deepseek", TaskDefault)
	assert.Equal(t, int64(1), c.UnknownUsage)
}

func TestTransportNonJSONBody(t *testing.T) {
	for name, body := range map[string]string{"text": "hello world", "array": `[{"model":"claude-3-5-haiku"}]`, "empty": ""} {
		t.Run(name, func(t *testing.T) {
			ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
			tr, _, client := testTransport(t)

			post(t, context.Background(), client, ccr.URL+"/v1/messages", body)

			assert.Equal(t, body, string(ccr.lastRequest(t).body))
			c := taskCounts(t, tr, ProviderUnknown, TaskDefault)
			assert.Equal(t, int64(1), c.Requests)
			assert.Equal(t, int64(120), c.InputTokens)
		})
	}
}

func TestTransportUncountedRequests(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, `{"input_tokens":2}`))
	tr, _, client := testTransport(t)
	body := messagesBody("claude-sonnet-4")

	for _, path := range []string{"/v1/messages/count_tokens", "/v1/chat/completions", "/v1/messages/", "/health"} {
		_, got := post(t, context.Background(), client, ccr.URL+path, body)
		assert.Equal(t, `{"input_tokens":2}`, string(got), path)
		assert.Equal(t, body, string(ccr.lastRequest(t).body), path)
	}
	resp, err := client.Get(ccr.URL + "/v1/messages")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())

	assert.Empty(t, providerNames(tr))
}

func TestTransportPathPrefix(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, _, client := testTransport(t)

	post(t, context.Background(), client, ccr.URL+"/preset/team/v1/messages?beta=true", messagesBody("claude-sonnet-4"))

	assert.Equal(t, int64(1), taskCounts(t, tr, "deepseek", TaskDefault).Requests)
}

func TestTransportRouteOverride(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, _, client := testTransport(t)

	ctx := WithRoute(context.Background(), "gemini", TaskBackground)
	post(t, ctx, client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4", `"thinking":{"type":"enabled"}`))

	// The response's model, deepseek-chat, is not gemini's: CCR fell back.
	assert.Equal(t, int64(1), taskCounts(t, tr, "gemini", TaskBackground).Fallbacks)
	assert.Equal(t, int64(120), taskCounts(t, tr, "deepseek", TaskBackground).InputTokens)
	assert.Equal(t, Counts{}, taskCounts(t, tr, "deepseek", TaskThink))
}

func TestTransportRouteOverrideUnlistedProvider(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, _, client := testTransport(t)

	post(t, WithRoute(context.Background(), "self-hosted", ""), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

	c := taskCounts(t, tr, "self-hosted", TaskDefault)
	assert.Equal(t, int64(1), c.Requests)
	assert.Equal(t, int64(120), c.InputTokens)
	assert.Equal(t, int64(0), c.Fallbacks)
}

func TestTransportFallbackByModel(t *testing.T) {
	fallbackReply := `{"model":"anthropic/claude-sonnet-4","usage":{"input_tokens":50,"output_tokens":5}}`
	fallbackStream := strings.Replace(openAIStream, `"model":"deepseek-chat"`, `"model":"anthropic/claude-sonnet-4"`, 1)
	tests := []struct {
		name    string
		respond http.HandlerFunc
		wantIn  int64
	}{
		{"JSON", writeMessagesJSON(http.StatusOK, fallbackReply), 50},
		{"SSE", respondSSE(fallbackStream), 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccr := newMessagesServer(t, tt.respond)
			tr, _, client := testTransport(t)

			post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

			routed := taskCounts(t, tr, "deepseek", TaskDefault)
			assert.Equal(t, int64(0), routed.Requests)
			assert.Equal(t, int64(1), routed.Failures)
			assert.Equal(t, int64(1), routed.Fallbacks)
			assert.Equal(t, int64(0), routed.Tokens)
			served := taskCounts(t, tr, "openrouter", TaskDefault)
			assert.Equal(t, int64(1), served.Requests)
			assert.Equal(t, tt.wantIn, served.InputTokens)
		})
	}
}

func TestTransportFallbackUnknownUsage(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, `{"model":"claude-sonnet-4-20250514","usage":{"input_tokens":0,"output_tokens":0}}`))
	tr, _, client := testTransport(t)

	post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

	routed := taskCounts(t, tr, "deepseek", TaskDefault)
	assert.Equal(t, int64(1), routed.Fallbacks)
	assert.Equal(t, int64(0), routed.Tokens)
	served := taskCounts(t, tr, "anthropic", TaskDefault)
	assert.Equal(t, int64(1), served.Requests)
	assert.Equal(t, int64(1), served.UnknownUsage)
	assert.Equal(t, int64(2), served.EstimatedTokens)
}

func TestTransportInvalidProviderName(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, _, client := testTransport(t)
	longName := strings.Repeat("p", MaxNameLength+1)

	resp, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody(longName+",model"))

	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, jsonReply, string(got))
	assert.Equal(t, int64(120), taskCounts(t, tr, ProviderUnknown, TaskDefault).InputTokens)
}

func TestTransportInvalidOverrideNames(t *testing.T) {
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
	tr, _, client := testTransport(t)
	longName := strings.Repeat("x", MaxNameLength+1)

	post(t, WithRoute(context.Background(), longName, longName), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

	assert.Equal(t, int64(1), taskCounts(t, tr, ProviderUnknown, TaskDefault).Requests)
}

func TestTransportNilTracker(t *testing.T) {
	ccr := newMessagesServer(t, respondSSE(anthropicStream))
	client := &http.Client{Transport: &Transport{Base: &http.Transport{}}}
	body := messagesBody("claude-sonnet-4")

	_, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", body)

	assert.Equal(t, anthropicStream, string(got))
	assert.Equal(t, body, string(ccr.lastRequest(t).body))
}

// recordingBase is a RoundTripper that keeps the request it receives and
// responds with a fixed JSON response.
type recordingBase struct {
	got *http.Request
}

func (b *recordingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.got = req
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(jsonReply)),
		Request:    req,
	}, nil
}

func TestTransportLeavesRequestUnchanged(t *testing.T) {
	tr, err := New(Config{Clock: NewManualClock(base)})
	require.NoError(t, err)
	recorder := &recordingBase{}
	transport := &Transport{Base: recorder, Tracker: tr}
	body := messagesBody("claude-sonnet-4")
	original := &closeCounter{Reader: strings.NewReader(body)}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/v1/messages", original)
	require.NoError(t, err)
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.ContentLength = int64(len(body))

	resp, err := transport.RoundTrip(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())

	assert.Same(t, original, req.Body, "the caller's request keeps its body")
	assert.Equal(t, 1, original.closes, "the caller's body is closed once")
	require.NotNil(t, recorder.got)
	assert.NotSame(t, req, recorder.got)
	assert.Equal(t, req.ContentLength, recorder.got.ContentLength)
	require.NotNil(t, recorder.got.GetBody)
	again, err := recorder.got.GetBody()
	require.NoError(t, err)
	replay, err := io.ReadAll(again)
	require.NoError(t, err)
	assert.Equal(t, body, string(replay))
}

func TestTransportRequestBodyReadError(t *testing.T) {
	tr, err := New(Config{Clock: NewManualClock(base)})
	require.NoError(t, err)
	failure := errors.New("disk read failed")
	transport := &Transport{Base: &http.Transport{}, Tracker: tr}
	defer transport.CloseIdleConnections()
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))

	req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", io.MultiReader(strings.NewReader(`{"model":`), errorReader{failure}))
	require.NoError(t, err)
	_, err = transport.RoundTrip(req)
	require.ErrorIs(t, err, failure)
	assert.Equal(t, int64(1), taskCounts(t, tr, ProviderUnknown, TaskDefault).Failures)
}

func TestTransportConcurrent(t *testing.T) {
	ccr := newMessagesServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "stream") {
			respondSSE(openAIStream)(w, r)
			return
		}
		writeMessagesJSON(http.StatusOK, jsonReply)(w, r)
	})
	tr, _, client := testTransport(t)

	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(stream bool) {
			defer wg.Done()
			for j := 0; j < perWorker; j++ {
				req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", bytes.NewReader([]byte(messagesBody("claude-sonnet-4"))))
				if !assert.NoError(t, err) {
					return
				}
				if stream {
					req.Header.Set("Accept", "text/event-stream")
				}
				resp, err := client.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				assert.NoError(t, err)
				assert.NoError(t, resp.Body.Close())
			}
		}(i%2 == 0)
	}
	wg.Wait()

	c := taskCounts(t, tr, "deepseek", TaskDefault)
	assert.Equal(t, int64(workers*perWorker), c.Requests)
	assert.Equal(t, int64(workers*perWorker*120), c.InputTokens)
	assert.Equal(t, int64(0), c.EstimatedTokens)
}

func TestTransportCloseIdleConnections(t *testing.T) {
	called := false
	transport := &Transport{Base: closeIdleFunc(func() { called = true })}
	(&http.Client{Transport: transport}).CloseIdleConnections()
	assert.True(t, called)
}

type closeIdleFunc func()

func (f closeIdleFunc) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("not used")
}

func (f closeIdleFunc) CloseIdleConnections() { f() }
