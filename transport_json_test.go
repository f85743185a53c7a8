package ccrusage

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxJSONDepth is the deepest nesting of arrays and objects that
// encoding/json accepts, counting the outermost value.
const maxJSONDepth = 10000

// nestedArrays returns depth arrays, each inside the one before.
func nestedArrays(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// Request bodies at the edges of JSON, sent through Transport: each must
// be recorded under the route that decoding it into a
// map[string]json.RawMessage gives, where keys match exactly once
// unescaped and the last of duplicate keys wins.
func TestTransportRequestJSONEdges(t *testing.T) {
	const sonnet, haiku = `"claude-sonnet-4"`, `"claude-3-5-haiku"`
	tests := []struct {
		name         string
		body         string
		wantProvider string
		wantTask     string
	}{
		{"duplicate model last wins", `{"model":` + haiku + `,"model":` + sonnet + `}`, "deepseek", TaskDefault},
		{"duplicate model reversed", `{"model":` + sonnet + `,"model":` + haiku + `}`, "gemini", TaskBackground},
		{"duplicate model then null", `{"model":` + haiku + `,"model":null}`, "deepseek", TaskDefault},
		{"key in upper case", `{"MODEL":` + haiku + `}`, "deepseek", TaskDefault},
		{"key in upper case then exact", `{"Model":` + sonnet + `,"model":` + haiku + `}`, "gemini", TaskBackground},
		{"escaped key", `{"mod\u0065l":` + haiku + `}`, "gemini", TaskBackground},
		{"escaped key in upper case", `{"\u004dodel":` + haiku + `}`, "deepseek", TaskDefault},
		{"Kelvin sign key", `{"model":` + sonnet + `,"thin\u212aing":{}}`, "deepseek", TaskDefault},
		{"Kelvin sign key unescaped", `{"model":` + sonnet + ",\"thin\u212aing\":{}}", "deepseek", TaskDefault},
		{"escaped thinking key", `{"model":` + sonnet + `,"thin\u006bing":{}}`, "deepseek", TaskThink},
		{"escaped model value", `{"model":"claude-3-5-h\u0061iku"}`, "gemini", TaskBackground},
		{"surrogate pair in model", `{"model":"claude-3-5-haiku-\ud83d\ude00"}`, "gemini", TaskBackground},
		{"lone surrogate in model", `{"model":"claude-3-5-haiku-\ud800"}`, "gemini", TaskBackground},
		{"invalid UTF-8 in model", "{\"model\":\"claude-3-5-haiku-\xff\"}", "gemini", TaskBackground},
		{"escaped comma in model", `{"model":"gemini\u002cgemini-2.5-pro"}`, "gemini", TaskDefault},
		{"model null", `{"model":null,"thinking":{}}`, "deepseek", TaskDefault},
		{"model number", `{"model":1e400}`, "deepseek", TaskDefault},
		{"thinking null", `{"model":` + sonnet + `,"thinking":null}`, "deepseek", TaskDefault},
		{"messages null", `{"model":` + haiku + `,"messages":null,"system":null,"tools":null}`, "gemini", TaskBackground},
		{"white space everywhere", " \t\r\n{ \"model\" \t:\r\n " + haiku + " \n, \"thinking\"\t: { } \r} \n", "gemini", TaskBackground},
		{"empty object", `{}`, "deepseek", TaskDefault},
		{"deepest valid nesting", `{"model":` + haiku + `,"metadata":` + nestedArrays(maxJSONDepth-1) + `}`, "gemini", TaskBackground},
		{"nesting past the maximum", `{"model":` + haiku + `,"metadata":` + nestedArrays(maxJSONDepth) + `}`, ProviderUnknown, TaskDefault},
		{"top-level null", `null`, ProviderUnknown, TaskDefault},
		{"top-level array", `[{"model":` + haiku + `}]`, ProviderUnknown, TaskDefault},
		{"top-level string", `"{\"model\":\"claude-3-5-haiku\"}"`, ProviderUnknown, TaskDefault},
		{"top-level number", `-0`, ProviderUnknown, TaskDefault},
		{"truncated", `{"model":` + haiku, ProviderUnknown, TaskDefault},
		{"trailing comma", `{"model":` + haiku + `,}`, ProviderUnknown, TaskDefault},
		{"two objects", `{"model":` + haiku + `}{"model":` + haiku + `}`, ProviderUnknown, TaskDefault},
		{"leading byte order mark", "\ufeff{\"model\":" + haiku + "}", ProviderUnknown, TaskDefault},
		{"unescaped control character", "{\"model\":\"claude-3-5-haiku\t\"}", ProviderUnknown, TaskDefault},
	}
	ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, `{"usage":{"input_tokens":7}}`))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, _, client := testTransport(t)

			post(t, context.Background(), client, ccr.URL+"/v1/messages", tt.body)

			assert.Equal(t, tt.body, string(ccr.lastRequest(t).body), "request body")
			assert.Equal(t, []string{tt.wantProvider}, providerNames(tr))
			assert.Equal(t, int64(7), taskCounts(t, tr, tt.wantProvider, tt.wantTask).InputTokens)
		})
	}
}

// Response bodies at the edges of JSON, sent to a request routed to
// deepseek: each must settle with the usage and on the provider that
// decoding it into a struct gives, where keys match under Unicode case
// folding and the last of duplicate keys wins. A nil want means
// FinishUnknown.
func TestTransportResponseJSONEdges(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		want         *Usage
		wantProvider string
	}{
		{"duplicate usage last wins", `{"usage":{"input_tokens":1},"usage":{"output_tokens":2}}`, &Usage{OutputTokens: 2}, "deepseek"},
		{"duplicate count last wins", `{"usage":{"input_tokens":1,"input_tokens":5}}`, &Usage{InputTokens: 5}, "deepseek"},
		{"duplicate count then null", `{"usage":{"input_tokens":5,"input_tokens":null,"output_tokens":1}}`, &Usage{OutputTokens: 1}, "deepseek"},
		{"usage then null", `{"usage":{"input_tokens":5},"usage":null}`, nil, "deepseek"},
		{"keys in other case", `{"USAGE":{"Input_Tokens":3,"OUTPUT_TOKENS":4}}`, &Usage{InputTokens: 3, OutputTokens: 4}, "deepseek"},
		{"exact and folded key", `{"usage":{"input_tokens":1},"Usage":{"input_tokens":6}}`, &Usage{InputTokens: 6}, "deepseek"},
		{"Kelvin sign key", `{"usage":{"input_to\u212aens":3}}`, &Usage{InputTokens: 3}, "deepseek"},
		{"Kelvin sign key unescaped", "{\"usage\":{\"input_to\u212aens\":3}}", &Usage{InputTokens: 3}, "deepseek"},
		{"long s key", `{"u\u017fage":{"cache_read_input_tokens":4,"output_tokens":1}}`, &Usage{OutputTokens: 1, CacheReadTokens: 4}, "deepseek"},
		{"escaped key", `{"\u0075sage":{"cache_creation_input_tokens":8}}`, &Usage{CacheCreationTokens: 8}, "deepseek"},
		{"key with suffix", `{"usage_":{"input_tokens":3}}`, nil, "deepseek"},
		{"exponent", `{"usage":{"input_tokens":1.5e3,"output_tokens":2E+1}}`, &Usage{InputTokens: 1500, OutputTokens: 20}, "deepseek"},
		{"fraction truncated", `{"usage":{"input_tokens":12.9}}`, &Usage{InputTokens: 12}, "deepseek"},
		{"negative zero only", `{"usage":{"input_tokens":-0,"output_tokens":0.0}}`, nil, "deepseek"},
		{"beyond float64", `{"usage":{"input_tokens":1e400}}`, &Usage{InputTokens: math.MaxInt64}, "deepseek"},
		{"huge integer", `{"usage":{"output_tokens":123456789012345678901234567890}}`, &Usage{OutputTokens: math.MaxInt64}, "deepseek"},
		{"negative count clamped", `{"usage":{"input_tokens":-5,"output_tokens":3}}`, &Usage{OutputTokens: 3}, "deepseek"},
		{"count as string", `{"usage":{"input_tokens":"5"}}`, nil, "deepseek"},
		{"usage null", `{"usage":null}`, nil, "deepseek"},
		{"usage array", `{"usage":[{"input_tokens":5}]}`, nil, "deepseek"},
		{"white space everywhere", "\r\n {\t\"usage\" :\n{ \"input_tokens\" \t: 9 \r\n, \"output_tokens\":1\t}\n } \t", &Usage{InputTokens: 9, OutputTokens: 1}, "deepseek"},
		{"escaped fallback model", `{"model":"gemini-2.5-\u0070ro","usage":{"input_tokens":3}}`, &Usage{InputTokens: 3}, "gemini"},
		{"fallback model key in upper case", `{"MODEL":"gemini-2.5-pro","usage":{"input_tokens":3}}`, &Usage{InputTokens: 3}, "gemini"},
		{"duplicate model last wins", `{"model":"gemini-2.5-pro","model":"deepseek-chat","usage":{"input_tokens":3}}`, &Usage{InputTokens: 3}, "deepseek"},
		{"model with surrogate pair", `{"model":"gemini-2.5-pro\ud83d\ude00","usage":{"input_tokens":3}}`, &Usage{InputTokens: 3}, "deepseek"},
		{"brackets in strings", `{"content":[{"text":"}]\"{["}],"usage":{"input_tokens":3}}`, &Usage{InputTokens: 3}, "deepseek"},
		{"deepest valid nesting", `{"content":` + nestedArrays(maxJSONDepth-1) + `,"usage":{"input_tokens":3}}`, &Usage{InputTokens: 3}, "deepseek"},
		{"nesting past the maximum", `{"content":` + nestedArrays(maxJSONDepth) + `,"usage":{"input_tokens":3}}`, nil, "deepseek"},
		{"top-level array", `[{"usage":{"input_tokens":3}}]`, nil, "deepseek"},
		{"top-level null", `null`, nil, "deepseek"},
		{"top-level string", `"usage"`, nil, "deepseek"},
		{"truncated", `{"usage":{"input_tokens":3}`, nil, "deepseek"},
		{"trailing text", `{"usage":{"input_tokens":3}} x`, nil, "deepseek"},
		{"empty", ``, nil, "deepseek"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, tt.body))
			tr, _, client := testTransport(t)

			_, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

			assert.Equal(t, tt.body, string(got), "response body")
			c := taskCounts(t, tr, tt.wantProvider, TaskDefault)
			if tt.want == nil {
				assert.Equal(t, int64(1), c.UnknownUsage, "unknown usage")
				assert.Zero(t, c.InputTokens+c.OutputTokens+c.CacheReadTokens+c.CacheCreationTokens, "tokens")
				return
			}
			assert.Zero(t, c.UnknownUsage, "unknown usage")
			assert.Equal(t, *tt.want, Usage{
				InputTokens:         c.InputTokens,
				OutputTokens:        c.OutputTokens,
				CacheReadTokens:     c.CacheReadTokens,
				CacheCreationTokens: c.CacheCreationTokens,
			})
		})
	}
}

// Event streams whose message_start and message_delta events use the
// same JSON edges. Event data keys match as struct fields do.
func TestTransportSSEJSONEdges(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   *Usage
	}{
		{
			"keys in other case",
			"data: {\"TYPE\":\"message_start\",\"Message\":{\"USAGE\":{\"Input_Tokens\":9}}}\n\n" +
				"data: {\"Type\":\"message_delta\",\"USAGE\":{\"OUTPUT_TOKENS\":2}}\n\n",
			&Usage{InputTokens: 9, OutputTokens: 2},
		},
		{
			"duplicate type last wins",
			"data: {\"type\":\"message_start\",\"type\":\"message_delta\",\"usage\":{\"output_tokens\":4},\"message\":{\"usage\":{\"input_tokens\":9}}}\n\n",
			&Usage{OutputTokens: 4},
		},
		{
			"escaped keys",
			"data: {\"\\u0074ype\":\"message_delta\",\"u\\u017fage\":{\"output_to\\u212aens\":5}}\n\n",
			&Usage{OutputTokens: 5},
		},
		{
			"white space in data",
			"data:  \t{ \"type\" : \"message_delta\" ,\t\"usage\" : { \"output_tokens\" : 6 } } \t\n\n",
			&Usage{OutputTokens: 6},
		},
		{
			"data split over lines",
			"data: {\"type\":\"message_delta\",\ndata: \"usage\":\r\ndata: {\"output_tokens\":7}}\n\n",
			&Usage{OutputTokens: 7},
		},
		{
			"message null",
			"data: {\"type\":\"message_start\",\"message\":null}\n\n",
			nil,
		},
		{
			"truncated event",
			"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":8}\n\n",
			nil,
		},
		{
			"top-level array",
			"data: [{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":8}}]\n\n",
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccr := newMessagesServer(t, respondSSE(tt.stream))
			tr, _, client := testTransport(t)

			_, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

			assert.Equal(t, tt.stream, string(got), "response body")
			c := taskCounts(t, tr, "deepseek", TaskDefault)
			if tt.want == nil {
				assert.Equal(t, int64(1), c.UnknownUsage, "unknown usage")
				return
			}
			assert.Zero(t, c.UnknownUsage, "unknown usage")
			assert.Equal(t, *tt.want, Usage{
				InputTokens:         c.InputTokens,
				OutputTokens:        c.OutputTokens,
				CacheReadTokens:     c.CacheReadTokens,
				CacheCreationTokens: c.CacheCreationTokens,
			})
		})
	}
}

// FuzzTransportJSONResponse sends each input as a JSON response through
// Transport, with its length declared or chunked, and checks that the
// Tracker's counts are those that decodeMessage, the encoding/json
// reference in jsonscan_test.go, gives. Transport has no Config, so the
// usage stays on ProviderUnknown whatever model the response names.
func FuzzTransportJSONResponse(f *testing.F) {
	for _, seed := range jsonScanSeeds {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	var mu sync.Mutex // guards reply and chunked
	var reply []byte
	var chunked bool
	ccr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		body, flush := reply, chunked
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !flush {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		half := len(body) / 2
		_, _ = w.Write(body[:half])
		if flush {
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write(body[half:])
	}))
	defer ccr.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()

	f.Fuzz(func(t *testing.T, body []byte, flush bool) {
		mu.Lock()
		reply, chunked = body, flush
		mu.Unlock()
		tr, err := New(Config{Clock: NewManualClock(base)})
		require.NoError(t, err)
		client := &http.Client{Transport: &Transport{Tracker: tr, Base: transport}}

		resp, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, body, got)

		c := taskCounts(t, tr, ProviderUnknown, TaskDefault)
		want := decodeMessage(body).usage
		if !want.billable() {
			require.Equal(t, int64(1), c.UnknownUsage, "unknown usage")
			return
		}
		u, _ := want.usage().clamp()
		require.Zero(t, c.UnknownUsage, "unknown usage")
		require.Equal(t, u, Usage{
			InputTokens:         c.InputTokens,
			OutputTokens:        c.OutputTokens,
			CacheReadTokens:     c.CacheReadTokens,
			CacheCreationTokens: c.CacheCreationTokens,
		})
	})
}
