package ccrusage

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchSSE is a short event stream as CCR sends it for an OpenAI-format
// upstream: zeros in message_start, the usage in the last message_delta.
const benchSSE = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"deepseek-chat","usage":{"input_tokens":0,"output_tokens":0}}}` + "\n\n" +
	"event: content_block_start\n" +
	`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
	"event: content_block_delta\n" +
	`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"fake reply from the benchmark server"}}` + "\n\n" +
	"event: content_block_stop\n" +
	`data: {"type":"content_block_stop","index":0}` + "\n\n" +
	"event: message_delta\n" +
	`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":120,"output_tokens":42,"cache_read_input_tokens":20}}` + "\n\n" +
	"event: message_stop\n" +
	`data: {"type":"message_stop"}` + "\n\n"

// benchWarmUpRequests is the number of requests that each client sends
// before its timer starts, so that the connection is open and the
// buffers of net/http's pools exist in every sub-benchmark alike.
const benchWarmUpRequests = 200

// BenchmarkTransport measures a Messages API round trip to an in-process
// server on 127.0.0.1, through three clients: the bare http.Transport (the
// baseline), a Transport with no Tracker (the pass-through wrapper) and a
// recording Transport. The difference between the first and the last is
// what recording costs per request: reading and classifying the request
// body, Begin, scanning the response, and settling.
//
// Every sub-benchmark starts its own server and client and warms them up,
// so that no client inherits connections, server goroutines or heap from
// the one measured before it.
func BenchmarkTransport(b *testing.B) {
	cfg := mustParseConfig(b, testConfigJSON)
	body := messagesBody("claude-sonnet-4")

	for _, format := range []struct{ name, query string }{{"json", ""}, {"sse", "?stream"}} {
		for _, mode := range []string{"bare", "passthrough", "ccrusage"} {
			b.Run(format.name+"/"+mode+"/serial", func(b *testing.B) {
				send := newBenchClient(b, cfg, mode, format.query, body)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := send(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(format.name+"/"+mode+"/parallel", func(b *testing.B) {
				send := newBenchClient(b, cfg, mode, format.query, body)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := send(); err != nil {
							// Fatal may only be called on the benchmark's
							// own goroutine.
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// newBenchClient starts a server that responds with jsonReply, or with
// benchSSE when query is "?stream", and returns a function that sends
// body to it through the client that mode names and reads the whole
// response. The server and the client's connections are closed when b
// ends.
func newBenchClient(b *testing.B, cfg *CCRConfig, mode, query, body string) func() error {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.RawQuery == "stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, benchSSE)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, jsonReply)
	}))
	b.Cleanup(srv.Close)

	base := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(base.CloseIdleConnections)
	var rt http.RoundTripper
	switch mode {
	case "bare":
		rt = base
	case "passthrough":
		rt = &Transport{Base: base, Config: cfg}
	case "ccrusage":
		tr, err := New(Config{})
		if err != nil {
			b.Fatal(err)
		}
		rt = &Transport{Base: base, Tracker: tr, Config: cfg}
	default:
		b.Fatalf("unknown client mode %q", mode)
	}
	client := &http.Client{Transport: rt}

	url := srv.URL + "/v1/messages" + query
	send := func() error {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return err
	}
	for i := 0; i < benchWarmUpRequests; i++ {
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	return send
}

// BenchmarkTransportCPU measures what the Transport adds to a round trip
// without a network. Its Base returns a fixed response at once, so the
// time per op is CPU time on one goroutine. The difference between bare
// and ccrusage is the recording work alone, without the scheduling and
// system calls of BenchmarkTransport's round trip.
func BenchmarkTransportCPU(b *testing.B) {
	cfg := mustParseConfig(b, testConfigJSON)
	body := messagesBody("claude-sonnet-4")

	for _, format := range []struct{ name, contentType, reply string }{
		{"json", "application/json", jsonReply},
		{"sse", "text/event-stream", benchSSE},
	} {
		base := cannedRoundTripper{contentType: format.contentType, body: format.reply}
		for _, mode := range []string{"bare", "passthrough", "ccrusage"} {
			var rt http.RoundTripper = base
			switch mode {
			case "passthrough":
				rt = &Transport{Base: base, Config: cfg}
			case "ccrusage":
				tr, err := New(Config{})
				if err != nil {
					b.Fatal(err)
				}
				rt = &Transport{Base: base, Tracker: tr, Config: cfg}
			}
			b.Run(format.name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/v1/messages", strings.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			})
		}
	}
}

// cannedRoundTripper reads and closes the request body and returns body
// with status 200 and the given Content-Type, without any I/O.
type cannedRoundTripper struct {
	contentType string
	body        string
}

func (c cannedRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {c.contentType}},
		Body:          io.NopCloser(strings.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       req,
	}, nil
}
