package ccrusage

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// anthropicStream is a stream as an Anthropic-format upstream sends it
// through CCR: input and cache counts in message_start, output in
// message_delta.
const anthropicStream = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"usage":{"input_tokens":120,"output_tokens":1,"cache_creation_input_tokens":8,"cache_read_input_tokens":20}}}` + "\n\n" +
	"event: content_block_start\n" +
	`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
	": keep-alive comment\n\n" +
	"event: content_block_delta\n" +
	`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}` + "\n\n" +
	"event: content_block_stop\n" +
	`data: {"type":"content_block_stop","index":0}` + "\n\n" +
	"event: message_delta\n" +
	`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":42}}` + "\n\n" +
	"event: message_stop\n" +
	`data: {"type":"message_stop"}` + "\n\n"

// openAIStream is a stream as CCR converts it from an OpenAI-format
// upstream: zeros in message_start, every count in message_delta, and no
// cache_creation_input_tokens.
const openAIStream = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_1796411562558","type":"message","role":"assistant","content":[],"model":"deepseek-chat","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}` + "\n\n" +
	"event: content_block_delta\n" +
	`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"fake reply from "}}` + "\n\n" +
	"event: message_delta\n" +
	`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":120,"output_tokens":42,"cache_read_input_tokens":20}}` + "\n\n" +
	"event: message_stop\n" +
	`data: {"type":"message_stop"}` + "\n\n"

// zeroStream is a converted stream whose usage CCR lost: all zeros.
const zeroStream = "event: message_start\n" +
	`data: {"type":"message_start","message":{"model":"deepseek-chat","usage":{"input_tokens":0,"output_tokens":0}}}` + "\n\n" +
	"event: message_delta\n" +
	`data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":0,"output_tokens":0,"cache_read_input_tokens":0}}` + "\n\n"

var (
	anthropicUsage = known(120, 42, 20, 8)
	openAIUsage    = partial(map[int]int64{usageInput: 120, usageOutput: 42, usageCacheRead: 20})
)

func scanSSE(chunks ...string) responseInfo {
	s := new(sseScanner)
	for _, c := range chunks {
		s.scan([]byte(c))
	}
	return s.result()
}

func TestSSEScannerStreams(t *testing.T) {
	tests := []struct {
		name      string
		stream    string
		wantModel string
		want      reportedUsage
	}{
		{"anthropic split", anthropicStream, "claude-sonnet-4-20250514", anthropicUsage},
		{"openai all in delta", openAIStream, "deepseek-chat", openAIUsage},
		{"all zero", zeroStream, "deepseek-chat", partial(map[int]int64{usageInput: 0, usageOutput: 0, usageCacheRead: 0})},
		{"CRLF", strings.ReplaceAll(openAIStream, "\n", "\r\n"), "deepseek-chat", openAIUsage},
		{"CR", strings.ReplaceAll(openAIStream, "\n", "\r"), "deepseek-chat", openAIUsage},
		{"empty", "", "", reportedUsage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scanSSE(tt.stream)
			assert.Equal(t, tt.wantModel, got.model)
			assert.Equal(t, tt.want, got.usage)
		})
	}
	assert.False(t, scanSSE(zeroStream).usage.billable(), "all-zero usage is not billable")
}

func TestSSEScannerEverySplit(t *testing.T) {
	for _, stream := range []string{anthropicStream, strings.ReplaceAll(openAIStream, "\n", "\r\n")} {
		want := scanSSE(stream)
		for i := 0; i <= len(stream); i++ {
			got := scanSSE(stream[:i], stream[i:])
			require.Equal(t, want, got, "split at %d", i)
		}
	}
}

func TestSSEScannerOneByteReads(t *testing.T) {
	for name, tt := range map[string]struct {
		stream string
		want   reportedUsage
	}{
		"anthropic": {anthropicStream, anthropicUsage},
		"openai":    {openAIStream, openAIUsage},
		"CRLF":      {strings.ReplaceAll(anthropicStream, "\n", "\r\n"), anthropicUsage},
	} {
		t.Run(name, func(t *testing.T) {
			info, got := tapResult(t, iotest.OneByteReader(strings.NewReader(tt.stream)), new(sseScanner))
			assert.Equal(t, tt.stream, string(got))
			assert.Equal(t, tt.want, info.usage)
		})
	}
}

func TestSSEScannerLastDeltaWins(t *testing.T) {
	stream := `data: {"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"output_tokens":5,"cache_read_input_tokens":3}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"output_tokens":9}}` + "\n\n"
	got := scanSSE(stream)
	assert.Equal(t, partial(map[int]int64{usageInput: 10, usageOutput: 9}), got.usage)
}

func TestSSEScannerFieldSyntax(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   reportedUsage
	}{
		{"no space after colon", "data:{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n", partial(map[int]int64{usageOutput: 7})},
		{"data split over lines", "data: {\"type\":\"message_delta\",\ndata: \"usage\":{\"output_tokens\":7}}\n\n", partial(map[int]int64{usageOutput: 7})},
		{"bare data line", "data: {\"type\":\"message_delta\",\ndata\ndata: \"usage\":{\"output_tokens\":7}}\n\n", partial(map[int]int64{usageOutput: 7})},
		{"other field ignored", "datum: x\nid: 1\nretry: 10\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n", partial(map[int]int64{usageOutput: 7})},
		{"event name not used", "event: message_delta\ndata: {\"type\":\"ping\",\"usage\":{\"output_tokens\":7},\"x\":\"message_delta\"}\n\n", reportedUsage{}},
		{"type decides", "event: ping\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n", partial(map[int]int64{usageOutput: 7})},
		{"invalid JSON skipped", "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}\n\n", reportedUsage{}},
		{"event without blank line at end", "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n", partial(map[int]int64{usageOutput: 7})},
		{"unterminated last line", "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}", reportedUsage{}},
		{"leading blank lines", "\n\n\r\n" + "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n", partial(map[int]int64{usageOutput: 7})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, scanSSE(tt.stream).usage)
		})
	}
}

func TestSSEScannerEarlyClose(t *testing.T) {
	cut := strings.Index(anthropicStream, "event: content_block_start")
	require.Positive(t, cut)

	tests := []struct {
		name string
		data string
		want reportedUsage
	}{
		{"after message_start", anthropicStream[:cut], known(120, 1, 20, 8)},
		{"inside message_start", anthropicStream[:cut/2], reportedUsage{}},
		{"before anything", "", reportedUsage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var infos []responseInfo
			tap := newBodyTap(io.NopCloser(strings.NewReader(anthropicStream)), new(sseScanner), func(info responseInfo) { infos = append(infos, info) })
			buf := make([]byte, len(tt.data))
			if len(buf) > 0 {
				_, err := io.ReadFull(tap, buf)
				require.NoError(t, err)
			}
			require.NoError(t, tap.Close())
			require.Len(t, infos, 1)
			assert.Equal(t, tt.want, infos[0].usage)
		})
	}
}

func TestSSEScannerHugeLines(t *testing.T) {
	huge := strings.Repeat("x", 4*maxEventBytes)
	delta := `data: {"type":"message_delta","usage":{"output_tokens":7}}` + "\n\n"
	tests := []struct {
		name   string
		stream string
		want   reportedUsage
	}{
		{"huge text delta skipped", `data: {"type":"content_block_delta","delta":{"text":"` + huge + `"}}` + "\n\n" + delta, partial(map[int]int64{usageOutput: 7})},
		{"huge other field skipped", "id: " + huge + "\n" + delta, partial(map[int]int64{usageOutput: 7})},
		{"huge delta event dropped", delta + `data: {"type":"message_delta","usage":{"output_tokens":9},"pad":"` + huge + `"}` + "\n\n", partial(map[int]int64{usageOutput: 7})},
		{"event over bound across lines dropped", delta + "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9},\n" +
			strings.Repeat("data: \""+strings.Repeat("y", 1000)+"\":1,\n", 70) + "data: \"z\":1}\n\n", partial(map[int]int64{usageOutput: 7})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := new(sseScanner)
			stream := []byte(tt.stream)
			for len(stream) > 0 {
				n := min(len(stream), 4096)
				s.scan(stream[:n])
				stream = stream[n:]
				require.LessOrEqual(t, cap(s.line), 2*maxEventBytes, "line buffer")
				require.LessOrEqual(t, cap(s.data), 2*maxEventBytes, "data buffer")
			}
			assert.Equal(t, tt.want, s.result().usage)
		})
	}
}

func TestIsEventStream(t *testing.T) {
	tests := []struct {
		contentType string
		want        bool
	}{
		{"text/event-stream", true},
		{"text/event-stream; charset=utf-8", true},
		{"Text/Event-Stream", true},
		{"application/json", false},
		{"", false},
		{"text/event-stream-x", false},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			h := http.Header{}
			h.Set("Content-Type", tt.contentType)
			assert.Equal(t, tt.want, isEventStream(h))
		})
	}
}

// FuzzSSEUsage checks that the scanner passes every byte through a
// bodyTap unchanged, gives the same result whatever the read sizes, and
// keeps its buffers within the bound.
func FuzzSSEUsage(f *testing.F) {
	for _, seed := range []string{
		anthropicStream,
		openAIStream,
		zeroStream,
		strings.ReplaceAll(anthropicStream, "\n", "\r\n"),
		strings.ReplaceAll(openAIStream, "\n", "\r"),
		"data: {\"type\":\"message_delta\",\ndata: \"usage\":{\"output_tokens\":7}}\n\n",
		"data\n\ndata:\n\n:\n\r\r\n",
		"data: {\"type\":\"message_start\",\"message\":{\"model\":5,\"usage\":[]}}\n\n",
	} {
		f.Add([]byte(seed), uint8(1))
		f.Add([]byte(seed), uint8(7))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		whole := new(sseScanner)
		whole.scan(stream)
		want := whole.result()

		chunked := new(sseScanner)
		size := int(chunk%32) + 1
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), size)
			chunked.scan(rest[:n])
			rest = rest[n:]
			require.LessOrEqual(t, len(chunked.line), maxEventBytes)
			require.LessOrEqual(t, len(chunked.data), maxEventBytes)
		}
		require.Equal(t, want, chunked.result())

		info, passed := tapResult(t, iotest.OneByteReader(strings.NewReader(string(stream))), new(sseScanner))
		require.Equal(t, stream, passed)
		require.Equal(t, want, info)
	})
}
