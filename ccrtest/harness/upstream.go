package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Format is the wire format a fake upstream speaks.
type Format int

const (
	// OpenAI is the OpenAI chat completions format, served at
	// /v1/chat/completions.
	OpenAI Format = iota
	// Anthropic is the Anthropic Messages format, served at /v1/messages.
	Anthropic
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case OpenAI:
		return "openai"
	case Anthropic:
		return "anthropic"
	default:
		return fmt.Sprintf("Format(%d)", int(f))
	}
}

// path returns the URL path the format's endpoint is served at.
func (f Format) path() string {
	if f == Anthropic {
		return "/v1/messages"
	}
	return "/v1/chat/completions"
}

// Usage is the token usage a fake upstream reports, in the Anthropic
// Messages terms that CCR returns to its client.
type Usage struct {
	// InputTokens are the input tokens not read from the cache.
	InputTokens int64
	// OutputTokens are the generated tokens.
	OutputTokens int64
	// CacheReadInputTokens are the input tokens read from the cache.
	CacheReadInputTokens int64
	// CacheCreationInputTokens are the input tokens written to the cache.
	// The OpenAI format has no such field, so only Anthropic-format fakes
	// report it.
	CacheCreationInputTokens int64
}

// defaultUsage is the usage a fake reports until SetUsage changes it.
func defaultUsage() Usage {
	return Usage{InputTokens: 120, OutputTokens: 42, CacheReadInputTokens: 20, CacheCreationInputTokens: 8}
}

// Received is one request a fake upstream received.
type Received struct {
	// Path is the request's URL path.
	Path string
	// Model is the model named in the request body.
	Model string
	// Stream reports whether the request body asked for a stream.
	Stream bool
}

// ReplyText returns the text a fake upstream responds with, which names the
// provider and the model that served the request.
func ReplyText(provider, model string) string {
	return fmt.Sprintf("fake reply from provider=%s model=%s", provider, model)
}

// Upstream is a fake LLM provider served by httptest on 127.0.0.1. It
// responds to POST requests at its format's path, as JSON or, when the body
// sets "stream": true, as server-sent events. An Upstream is safe for
// concurrent use.
type Upstream struct {
	name   string
	format Format
	status int // when non-zero, the status of every response
	server *httptest.Server

	mu       sync.Mutex // guards usage, received and hold
	usage    Usage
	received []Received
	// hold, while not nil, pauses each stream after its first text delta
	// until it is closed.
	hold chan struct{}
}

// NewUpstream starts a fake provider named name that responds in format.
// It reports 120 input, 42 output, 20 cache-read and 8 cache-creation
// tokens until SetUsage changes them. Close it when done.
func NewUpstream(name string, format Format) *Upstream {
	return startUpstream(name, format, 0)
}

// NewFailingUpstream starts a fake OpenAI-format provider named name that
// responds to every request with the HTTP status code status and an
// OpenAI-style error body. Close it when done.
func NewFailingUpstream(name string, status int) *Upstream {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("harness: failing upstream status must be 4xx or 5xx: %d", status))
	}
	return startUpstream(name, OpenAI, status)
}

func startUpstream(name string, format Format, status int) *Upstream {
	u := &Upstream{name: name, format: format, status: status, usage: defaultUsage()}
	// httptest.NewServer listens on 127.0.0.1 on a port the kernel picks.
	u.server = httptest.NewServer(http.HandlerFunc(u.serveHTTP))
	return u
}

// Name returns the provider name the fake was started with.
func (u *Upstream) Name() string { return u.name }

// Format returns the wire format the fake speaks.
func (u *Upstream) Format() Format { return u.format }

// URL returns the full endpoint URL to configure as the provider's
// api_base_url in CCR.
func (u *Upstream) URL() string { return u.server.URL + u.format.path() }

// Hits returns the number of requests with a JSON body that the fake has
// received, those it failed or sent to a wrong path included.
func (u *Upstream) Hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.received)
}

// Received returns a copy of the requests the fake has received, oldest
// first.
func (u *Upstream) Received() []Received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Received(nil), u.received...)
}

// Usage returns the usage the fake reports.
func (u *Upstream) Usage() Usage {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.usage
}

// SetUsage sets the usage the fake reports in later responses.
func (u *Upstream) SetUsage(usage Usage) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.usage = usage
}

// HoldStreams makes the fake pause each stream that it starts from now on
// after the first text delta, before the event with the final usage, until
// release is called or the client goes away. A test uses it to read the
// start of a stream knowing that the final usage has not been sent.
// Calling release again does nothing.
func (u *Upstream) HoldStreams() (release func()) {
	hold := make(chan struct{})
	u.mu.Lock()
	u.hold = hold
	u.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			if u.hold == hold {
				u.hold = nil
			}
			u.mu.Unlock()
			close(hold)
		})
	}
}

// Close shuts the fake down and waits for its requests in flight.
func (u *Upstream) Close() { u.server.Close() }

// requestBody is the part of a chat completions or Messages request body
// that the fake reads.
type requestBody struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
}

func (u *Upstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed: "+r.Method)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the request body failed: "+err.Error())
		return
	}
	var body requestBody
	if err := json.Unmarshal(raw, &body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON request body: "+err.Error())
		return
	}

	// Record the request before responding, so a client that has its
	// response also finds it counted.
	u.mu.Lock()
	u.received = append(u.received, Received{Path: r.URL.Path, Model: body.Model, Stream: body.Stream})
	n := len(u.received)
	usage := u.usage
	hold := u.hold
	u.mu.Unlock()

	if r.URL.Path != u.format.path() {
		writeError(w, http.StatusNotFound, fmt.Sprintf("fake upstream %s serves %s, not %s", u.name, u.format.path(), r.URL.Path))
		return
	}
	if u.status != 0 {
		writeError(w, u.status, fmt.Sprintf("fake upstream %s failure (HTTP %d)", u.name, u.status))
		return
	}

	reply := reply{
		id:    fmt.Sprintf("fake-%s-%d", u.name, n),
		model: body.Model,
		text:  ReplyText(u.name, body.Model),
		usage: usage,
		pause: func() {
			if hold == nil {
				return
			}
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		},
	}
	switch {
	case u.format == OpenAI && body.Stream:
		reply.streamOpenAI(w)
	case u.format == OpenAI:
		reply.writeOpenAI(w)
	case body.Stream:
		reply.streamAnthropic(w)
	default:
		reply.writeAnthropic(w)
	}
}

// writeError responds with status and an OpenAI-style error body, which is
// what OpenAI-compatible providers send and what CCR wraps into its own
// error.
func writeError(w http.ResponseWriter, status int, message string) {
	errType := "server_error"
	if status == http.StatusTooManyRequests {
		errType = "rate_limit_error"
	} else if status < 500 {
		errType = "invalid_request_error"
	}
	writeJSON(w, status, map[string]any{
		"error": map[string]any{"message": message, "type": errType},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the response failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// reply is one successful response of a fake upstream.
type reply struct {
	id    string
	model string
	text  string
	usage Usage
	// pause is called in a stream after the first text delta.
	pause func()
}

// chunks splits the reply text into a few pieces, so a stream carries more
// than one content delta.
func (r reply) chunks() []string {
	var parts []string
	for rest := r.text; rest != ""; {
		n := min(16, len(rest))
		parts = append(parts, rest[:n])
		rest = rest[n:]
	}
	return parts
}

// openAIUsage returns the usage in OpenAI's terms, where prompt_tokens
// includes the cached tokens. CCR subtracts cached_tokens again to get
// Anthropic's input_tokens.
func (r reply) openAIUsage() map[string]any {
	prompt := r.usage.InputTokens + r.usage.CacheReadInputTokens
	return map[string]any{
		"prompt_tokens":         prompt,
		"completion_tokens":     r.usage.OutputTokens,
		"total_tokens":          prompt + r.usage.OutputTokens,
		"prompt_tokens_details": map[string]any{"cached_tokens": r.usage.CacheReadInputTokens},
	}
}

func (r reply) anthropicUsage() map[string]any {
	return map[string]any{
		"input_tokens":                r.usage.InputTokens,
		"output_tokens":               r.usage.OutputTokens,
		"cache_creation_input_tokens": r.usage.CacheCreationInputTokens,
		"cache_read_input_tokens":     r.usage.CacheReadInputTokens,
	}
}

func (r reply) writeOpenAI(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id":      r.id,
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   r.model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": r.text},
			"finish_reason": "stop",
		}},
		"usage": r.openAIUsage(),
	})
}

func (r reply) writeAnthropic(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id":            r.id,
		"type":          "message",
		"role":          "assistant",
		"model":         r.model,
		"content":       []any{map[string]any{"type": "text", "text": r.text}},
		"stop_reason":   "end_turn",
		"stop_sequence": nil,
		"usage":         r.anthropicUsage(),
	})
}

// streamOpenAI sends the reply as chat completion chunks, with the usage
// on the chunk that carries finish_reason. CCR 2.0.0 can report zero usage
// when the usage comes in a separate chunk after finish_reason and both
// arrive in one network read.
func (r reply) streamOpenAI(w http.ResponseWriter) {
	events := newEventWriter(w)
	created := time.Now().Unix()
	chunk := func(delta map[string]any, finish any, usage map[string]any) {
		c := map[string]any{
			"id":      r.id,
			"object":  "chat.completion.chunk",
			"created": created,
			"model":   r.model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		}
		if usage != nil {
			c["usage"] = usage
		}
		events.data(c)
	}

	chunk(map[string]any{"role": "assistant", "content": ""}, nil, nil)
	for i, part := range r.chunks() {
		chunk(map[string]any{"content": part}, nil, nil)
		if i == 0 {
			r.pause()
		}
	}
	chunk(map[string]any{}, "stop", r.openAIUsage())
	events.raw("data: [DONE]\n\n")
}

// streamAnthropic sends the reply as Messages stream events. As in
// Anthropic's own streams, message_start carries the input and cache
// counts and message_delta the final output count.
func (r reply) streamAnthropic(w http.ResponseWriter) {
	events := newEventWriter(w)
	startUsage := r.anthropicUsage()
	startUsage["output_tokens"] = 1

	events.event("message_start", map[string]any{
		"type": "message_start",
		"message": map[string]any{
			"id": r.id, "type": "message", "role": "assistant", "model": r.model,
			"content": []any{}, "stop_reason": nil, "stop_sequence": nil,
			"usage": startUsage,
		},
	})
	events.event("content_block_start", map[string]any{
		"type": "content_block_start", "index": 0,
		"content_block": map[string]any{"type": "text", "text": ""},
	})
	for i, part := range r.chunks() {
		events.event("content_block_delta", map[string]any{
			"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": part},
		})
		if i == 0 {
			r.pause()
		}
	}
	events.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	events.event("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": r.usage.OutputTokens},
	})
	events.event("message_stop", map[string]any{"type": "message_stop"})
}

// eventWriter writes server-sent events and flushes each one, so every
// event reaches CCR in its own network write where the kernel allows.
type eventWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
}

func newEventWriter(w http.ResponseWriter) eventWriter {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	return eventWriter{w: w, flusher: flusher}
}

func (e eventWriter) event(name string, v any) {
	data, _ := json.Marshal(v) // maps of strings and numbers always encode
	e.raw("event: " + name + "\ndata: " + string(data) + "\n\n")
}

func (e eventWriter) data(v any) {
	data, _ := json.Marshal(v)
	e.raw("data: " + string(data) + "\n\n")
}

func (e eventWriter) raw(s string) {
	_, _ = io.WriteString(e.w, s)
	if e.flusher != nil {
		e.flusher.Flush()
	}
}
