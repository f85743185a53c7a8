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

// BenchmarkTransport measures a Messages API round trip to an in-process
// server on 127.0.0.1, through the bare http.Transport (the baseline) and
// through a ccrusage.Transport wrapping it. The difference is what
// recording costs per request: reading and classifying the request body,
// Begin, scanning the response, and settling.
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.Contains(r.URL.RawQuery, "stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, benchSSE)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, jsonReply)
	}))
	defer srv.Close()
	cfg := mustParseConfig(b, testConfigJSON)
	body := messagesBody("claude-sonnet-4")

	for _, format := range []struct{ name, query string }{{"json", ""}, {"sse", "?stream"}} {
		url := srv.URL + "/v1/messages" + format.query
		for _, mode := range []string{"bare", "ccrusage"} {
			base := &http.Transport{MaxIdleConnsPerHost: 64}
			var rt http.RoundTripper = base
			if mode == "ccrusage" {
				tr, err := New(Config{})
				if err != nil {
					b.Fatal(err)
				}
				rt = &Transport{Base: base, Tracker: tr, Config: cfg}
			}
			client := &http.Client{Transport: rt}
			send := func(b *testing.B) {
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			b.Run(format.name+"/"+mode+"/serial", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					send(b)
				}
			})
			b.Run(format.name+"/"+mode+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						send(b)
					}
				})
			})
			base.CloseIdleConnections()
		}
	}
}
