package harness

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// post sends body to url and returns the response status and body.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(data)
}

// sseData returns the data fields of the server-sent events in body, and
// the event names in the same order ("" for events without one).
func sseData(t *testing.T, body string) (names, data []string) {
	t.Helper()
	var name string
	scanner := bufio.NewScanner(strings.NewReader(body))
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			names = append(names, name)
			data = append(data, strings.TrimPrefix(line, "data: "))
			name = ""
		}
	}
	require.NoError(t, scanner.Err())
	return names, data
}

func TestUpstreamOpenAIJSON(t *testing.T) {
	u := NewUpstream("deepseek", OpenAI)
	defer u.Close()

	status, body := post(t, u.URL(), `{"model":"deepseek-chat","messages":[]}`)
	require.Equal(t, http.StatusOK, status, body)

	var resp struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens        int64 `json:"prompt_tokens"`
			CompletionTokens    int64 `json:"completion_tokens"`
			PromptTokensDetails struct {
				CachedTokens int64 `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Len(t, resp.Choices, 1)
	assert.Equal(t, "deepseek-chat", resp.Model)
	assert.Equal(t, ReplyText("deepseek", "deepseek-chat"), resp.Choices[0].Message.Content)
	assert.Equal(t, "stop", resp.Choices[0].FinishReason)
	assert.Equal(t, int64(140), resp.Usage.PromptTokens, "prompt_tokens includes cached tokens")
	assert.Equal(t, int64(42), resp.Usage.CompletionTokens)
	assert.Equal(t, int64(20), resp.Usage.PromptTokensDetails.CachedTokens)
	assert.Equal(t, []Received{{Path: "/v1/chat/completions", Model: "deepseek-chat"}}, u.Received())
}

func TestUpstreamOpenAIStream(t *testing.T) {
	u := NewUpstream("gemini", OpenAI)
	defer u.Close()
	u.SetUsage(Usage{InputTokens: 7, OutputTokens: 3, CacheReadInputTokens: 2})

	status, body := post(t, u.URL(), `{"model":"gemini-2.5-pro","stream":true}`)
	require.Equal(t, http.StatusOK, status, body)

	_, data := sseData(t, body)
	require.GreaterOrEqual(t, len(data), 3)
	assert.Equal(t, "[DONE]", data[len(data)-1])

	type chunk struct {
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			PromptTokens        int64 `json:"prompt_tokens"`
			CompletionTokens    int64 `json:"completion_tokens"`
			PromptTokensDetails struct {
				CachedTokens int64 `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	var text strings.Builder
	var finish chunk
	for i, d := range data[:len(data)-1] {
		var c chunk
		require.NoError(t, json.Unmarshal([]byte(d), &c), "chunk %d", i)
		require.Len(t, c.Choices, 1, "chunk %d", i)
		text.WriteString(c.Choices[0].Delta.Content)
		if c.Choices[0].FinishReason != nil {
			finish = c
			assert.Equal(t, len(data)-2, i, "finish_reason only on the last chunk")
		} else {
			assert.Nil(t, c.Usage, "usage only on the finish chunk, chunk %d", i)
		}
	}
	assert.Equal(t, ReplyText("gemini", "gemini-2.5-pro"), text.String())
	require.NotNil(t, finish.Usage, "finish chunk carries usage")
	assert.Equal(t, int64(9), finish.Usage.PromptTokens)
	assert.Equal(t, int64(3), finish.Usage.CompletionTokens)
	assert.Equal(t, int64(2), finish.Usage.PromptTokensDetails.CachedTokens)
	assert.Equal(t, []Received{{Path: "/v1/chat/completions", Model: "gemini-2.5-pro", Stream: true}}, u.Received())
}

// anthropicUsageJSON is the usage object of an Anthropic Messages response
// or stream event.
type anthropicUsageJSON struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

func ptr(n int64) *int64 { return &n }

func TestUpstreamAnthropicJSON(t *testing.T) {
	u := NewUpstream("anthropic", Anthropic)
	defer u.Close()

	status, body := post(t, u.URL(), `{"model":"claude-sonnet-4-20250514"}`)
	require.Equal(t, http.StatusOK, status, body)

	var resp struct {
		Type    string `json:"type"`
		Model   string `json:"model"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StopReason string             `json:"stop_reason"`
		Usage      anthropicUsageJSON `json:"usage"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &resp))
	require.Len(t, resp.Content, 1)
	assert.Equal(t, "message", resp.Type)
	assert.Equal(t, "claude-sonnet-4-20250514", resp.Model)
	assert.Equal(t, ReplyText("anthropic", "claude-sonnet-4-20250514"), resp.Content[0].Text)
	assert.Equal(t, "end_turn", resp.StopReason)
	assert.Equal(t, anthropicUsageJSON{ptr(120), ptr(42), ptr(8), ptr(20)}, resp.Usage)
}

func TestUpstreamAnthropicStream(t *testing.T) {
	u := NewUpstream("anthropic", Anthropic)
	defer u.Close()

	status, body := post(t, u.URL(), `{"model":"claude-sonnet-4-20250514","stream":true}`)
	require.Equal(t, http.StatusOK, status, body)

	names, data := sseData(t, body)
	require.GreaterOrEqual(t, len(names), 6)
	assert.Equal(t, "message_start", names[0])
	assert.Equal(t, "content_block_start", names[1])
	assert.Equal(t, []string{"content_block_stop", "message_delta", "message_stop"}, names[len(names)-3:])

	var start struct {
		Message struct {
			Model string             `json:"model"`
			Usage anthropicUsageJSON `json:"usage"`
		} `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(data[0]), &start))
	assert.Equal(t, "claude-sonnet-4-20250514", start.Message.Model)
	assert.Equal(t, anthropicUsageJSON{ptr(120), ptr(1), ptr(8), ptr(20)}, start.Message.Usage)

	var delta struct {
		Usage anthropicUsageJSON `json:"usage"`
	}
	require.NoError(t, json.Unmarshal([]byte(data[len(data)-2]), &delta))
	assert.Equal(t, anthropicUsageJSON{OutputTokens: ptr(42)}, delta.Usage)

	var text strings.Builder
	for i, name := range names {
		if name != "content_block_delta" {
			continue
		}
		var ev struct {
			Delta struct {
				Text string `json:"text"`
			} `json:"delta"`
		}
		require.NoError(t, json.Unmarshal([]byte(data[i]), &ev))
		text.WriteString(ev.Delta.Text)
	}
	assert.Equal(t, ReplyText("anthropic", "claude-sonnet-4-20250514"), text.String())
}

func TestUpstreamFailing(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			u := NewFailingUpstream("broken", status)
			defer u.Close()

			for range 2 {
				got, body := post(t, u.URL(), `{"model":"m","stream":true}`)
				assert.Equal(t, status, got)
				assert.Contains(t, body, `"error"`)
			}
			assert.Equal(t, 2, u.Hits())
		})
	}
}

func TestUpstreamWrongPath(t *testing.T) {
	u := NewUpstream("anthropic", Anthropic)
	defer u.Close()

	status, _ := post(t, strings.TrimSuffix(u.URL(), "/v1/messages")+"/v1/chat/completions", `{"model":"m"}`)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, 1, u.Hits(), "requests to a wrong path are counted")
}

func TestUpstreamInvalidBody(t *testing.T) {
	u := NewUpstream("deepseek", OpenAI)
	defer u.Close()

	status, _ := post(t, u.URL(), `not json`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, 0, u.Hits(), "invalid bodies are not counted")
}

func TestNewFailingUpstreamPanicsOnSuccessStatus(t *testing.T) {
	assert.Panics(t, func() { NewFailingUpstream("x", http.StatusOK) })
}

func TestUpstreamHoldStreams(t *testing.T) {
	for _, format := range []Format{OpenAI, Anthropic} {
		t.Run(format.String(), func(t *testing.T) {
			u := NewUpstream("held", format)
			defer u.Close()
			release := u.HoldStreams()
			defer release()

			resp, err := http.Post(u.URL(), "application/json", strings.NewReader(`{"model":"m","stream":true}`))
			require.NoError(t, err)
			defer resp.Body.Close()

			// Read up to the first text delta, which the fake sends before
			// it pauses.
			reader := bufio.NewReader(resp.Body)
			var head strings.Builder
			for !strings.Contains(head.String(), "fake reply") {
				line, err := reader.ReadString('\n')
				require.NoError(t, err, "stream ended before the first text delta")
				head.WriteString(line)
			}
			assert.NotContains(t, head.String(), "completion_tokens", "OpenAI usage sent before the pause")
			assert.NotContains(t, head.String(), "message_delta", "Anthropic output usage sent before the pause")

			rest := make(chan string, 1)
			go func() {
				data, _ := io.ReadAll(reader)
				rest <- string(data)
			}()
			assert.Never(t, func() bool { return len(rest) > 0 }, 100*time.Millisecond, 10*time.Millisecond,
				"stream went on before release")

			release()
			release() // a second call does nothing
			var tail string
			select {
			case tail = <-rest:
			case <-time.After(5 * time.Second):
				t.Fatal("stream did not end after release")
			}
			if format == OpenAI {
				assert.Contains(t, tail, "completion_tokens")
				assert.True(t, strings.HasSuffix(tail, "data: [DONE]\n\n"), "stream ends with [DONE]")
			} else {
				assert.Contains(t, tail, "message_delta")
				assert.Contains(t, tail, "message_stop")
			}
		})
	}
}
