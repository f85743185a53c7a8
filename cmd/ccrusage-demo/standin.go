package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// standinConfig is the claude-code-router config.json that the stand-in
// routes by. The demo's Transport reads the same file, so both agree on
// which provider serves each model.
const standinConfig = `{
  // Providers and models as a typical CCR set-up names them.
  "Providers": [
    {"name": "deepseek", "api_base_url": "http://127.0.0.1:1/v1/chat/completions", "api_key": "$DEMO_UNUSED_KEY", "models": ["deepseek-chat", "deepseek-reasoner"]},
    {"name": "gemini", "api_base_url": "http://127.0.0.1:1/v1/chat/completions", "api_key": "$DEMO_UNUSED_KEY", "models": ["gemini-2.5-flash", "gemini-2.5-pro"]},
    {"name": "openrouter", "api_base_url": "http://127.0.0.1:1/v1/chat/completions", "api_key": "$DEMO_UNUSED_KEY", "models": ["google/gemini-2.5-flash", "anthropic/claude-sonnet-4"]},
  ],
  "Router": {
    "default": "deepseek,deepseek-chat",
    "background": "gemini,gemini-2.5-flash",
    "think": "deepseek,deepseek-reasoner",
    "longContext": "gemini,gemini-2.5-pro",
    "longContextThreshold": 2000,
    "webSearch": "openrouter,google/gemini-2.5-flash",
    "image": "openrouter,anthropic/claude-sonnet-4",
  },
}`

// standin is an in-process stand-in for claude-code-router: it serves
// /health and the Messages API on loopback, choosing a model per request as
// CCR's router does, and reports usage in CCR's format, as JSON or as an
// Anthropic event stream.
type standin struct {
	requests atomic.Int64
}

func (s *standin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/health" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","timestamp":"1970-01-01T00:00:00.000Z"}`)
	case r.URL.Path == "/v1/messages" && r.Method == http.MethodPost:
		s.messages(w, r)
	default:
		http.NotFound(w, r)
	}
}

// messageRequest holds the fields of a Messages API request that routing
// looks at.
type messageRequest struct {
	Model    string            `json:"model"`
	Stream   bool              `json:"stream"`
	Thinking json.RawMessage   `json:"thinking"`
	Messages []json.RawMessage `json:"messages"`
	Tools    []struct {
		Type string `json:"type"`
	} `json:"tools"`
}

func (s *standin) messages(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "reading the request failed", http.StatusBadRequest)
		return
	}
	var req messageRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"error":{"message":"invalid JSON","type":"api_error"}}`, http.StatusBadRequest)
		return
	}
	model := route(req, len(body))

	// Every eleventh request fails upstream, as a rate-limited provider
	// would, so the demo shows failures too.
	if n%11 == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{"error":{"message":"Error from provider(%s: 429): rate limited","type":"api_error","code":"provider_response_error"}}`, model)
		return
	}

	input := int64(len(body)/4 + 20)
	output := int64(40 + n%7*10)
	cached := input / 5
	if req.Stream {
		writeStream(w, model, input-cached, output, cached)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"msg_standin_%d","type":"message","role":"assistant","model":%q,`+
		`"content":[{"type":"text","text":"stand-in reply"}],"stop_reason":"end_turn","stop_sequence":null,`+
		`"usage":{"input_tokens":%d,"output_tokens":%d,"cache_read_input_tokens":%d}}`,
		n, model, input-cached, output, cached)
}

// route picks the served model the way CCR's router does: an explicit
// "provider,model", then long context, background (a Claude Haiku model),
// web search, thinking, and the default route.
func route(req messageRequest, size int) string {
	switch {
	case strings.Contains(req.Model, ","):
		return req.Model[strings.Index(req.Model, ",")+1:]
	case size/4 > 2000:
		return "gemini-2.5-pro"
	case strings.Contains(req.Model, "claude") && strings.Contains(req.Model, "haiku"):
		return "gemini-2.5-flash"
	}
	for _, tool := range req.Tools {
		if strings.HasPrefix(tool.Type, "web_search") {
			return "google/gemini-2.5-flash"
		}
	}
	if len(req.Thinking) > 0 && string(req.Thinking) != "null" && string(req.Thinking) != "false" {
		return "deepseek-reasoner"
	}
	return "deepseek-chat"
}

// writeStream writes an Anthropic event stream the way CCR converts an
// OpenAI-format upstream: zeros in message_start, the usage in the last
// message_delta.
func writeStream(w http.ResponseWriter, model string, input, output, cached int64) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	event := func(name, data string) {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
		if flusher != nil {
			flusher.Flush()
		}
	}
	event("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_standin","type":"message","role":"assistant","content":[],"model":%q,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`, model))
	event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for _, part := range []string{"stand-in ", "streamed ", "reply"} {
		event("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, part))
	}
	event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	event("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":%d,"output_tokens":%d,"cache_read_input_tokens":%d}}`, input, output, cached))
	event("message_stop", `{"type":"message_stop"}`)
}
