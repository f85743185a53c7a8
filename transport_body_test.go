package ccrusage

import (
	"context"
	"io"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allocatedBytes returns the fewest bytes that f allocated in three runs,
// so that what other goroutines allocate during one run does not count.
func allocatedBytes(f func()) uint64 {
	fewest := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		fewest = min(fewest, after.TotalAlloc-before.TotalAlloc)
	}
	return fewest
}

// A Content-Length far above the body that follows must cost no more
// than maxPresizeBytes, however large MaxBodyBytes is. The slack covers
// what the HTTP client and server allocate for one round trip.
func TestTransportFalseLengthAllocation(t *testing.T) {
	const limit = 32 << 20
	const slack = 256 << 10

	t.Run("request", func(t *testing.T) {
		ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, jsonReply))
		tr, transport, client := testTransport(t)
		transport.MaxBodyBytes = limit
		body := messagesBody("claude-sonnet-4")

		allocated := allocatedBytes(func() {
			req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", strings.NewReader(body))
			require.NoError(t, err)
			req.ContentLength = limit
			_, err = client.Do(req)
			// net/http rejects a body shorter than its Content-Length.
			require.Error(t, err)
		})

		assert.Less(t, allocated, uint64(maxPresizeBytes+slack))
		assert.Equal(t, int64(3), taskCounts(t, tr, "deepseek", TaskDefault).Failures, "the body is still classified")
	})

	t.Run("response", func(t *testing.T) {
		ccr := newMessagesServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(limit))
			_, _ = io.WriteString(w, jsonReply)
		})
		tr, transport, client := testTransport(t)
		transport.MaxBodyBytes = limit
		body := messagesBody("claude-sonnet-4")

		allocated := allocatedBytes(func() {
			resp, err := client.Post(ccr.URL+"/v1/messages", "application/json", strings.NewReader(body))
			require.NoError(t, err)
			_, err = io.ReadAll(resp.Body)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.NoError(t, resp.Body.Close())
		})

		assert.Less(t, allocated, uint64(maxPresizeBytes+slack))
		// The JSON before the cut is whole, so its usage counts.
		assert.Equal(t, int64(3*120), taskCounts(t, tr, "deepseek", TaskDefault).InputTokens)
	})
}

// paddedBody returns a request body of exactly size bytes for a haiku
// model, which classifies as background, or panics if size is too small.
func paddedBody(size int) string {
	prefix := `{"model":"claude-3-5-haiku","max_tokens":64,"messages":[],"metadata":"`
	suffix := `"}`
	return prefix + strings.Repeat("p", size-len(prefix)-len(suffix)) + suffix
}

// Bodies one byte below, at and above MaxBodyBytes, sent with their
// length declared and chunked: a request that fits is classified, and a
// response that fits is read.
func TestTransportBodiesAroundBound(t *testing.T) {
	const limit = 4096
	for _, size := range []int{limit - 1, limit, limit + 1} {
		for _, declared := range []bool{true, false} {
			name := strconv.Itoa(size-limit) + "/chunked"
			if declared {
				name = strconv.Itoa(size-limit) + "/declared"
			}
			fits := size <= limit

			t.Run("request "+name, func(t *testing.T) {
				ccr := newMessagesServer(t, writeMessagesJSON(http.StatusOK, `{"usage":{"input_tokens":7}}`))
				tr, transport, client := testTransport(t)
				transport.MaxBodyBytes = limit
				body := paddedBody(size)
				var reader io.Reader = strings.NewReader(body)
				if !declared {
					reader = plainReader{reader}
				}

				req, err := http.NewRequest(http.MethodPost, ccr.URL+"/v1/messages", reader)
				require.NoError(t, err)
				resp, err := client.Do(req)
				require.NoError(t, err)
				_, err = io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())

				assert.Equal(t, body, string(ccr.lastRequest(t).body), "request body")
				provider, task := ProviderUnknown, TaskDefault
				if fits {
					provider, task = "gemini", TaskBackground
				}
				assert.Equal(t, int64(7), taskCounts(t, tr, provider, task).InputTokens)
			})

			t.Run("response "+name, func(t *testing.T) {
				padding := strings.Repeat("p", size-len(`{"usage":{"input_tokens":7},"padding":""}`))
				reply := `{"usage":{"input_tokens":7},"padding":"` + padding + `"}`
				require.Len(t, reply, size)
				ccr := newMessagesServer(t, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					if declared {
						w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
					}
					// Without a declared length and with a flush before the
					// end, net/http sends the body chunked.
					_, _ = io.WriteString(w, reply[:10])
					w.(http.Flusher).Flush()
					_, _ = io.WriteString(w, reply[10:])
				})
				tr, transport, client := testTransport(t)
				transport.MaxBodyBytes = limit

				resp, got := post(t, context.Background(), client, ccr.URL+"/v1/messages", messagesBody("claude-sonnet-4"))

				assert.Equal(t, reply, string(got))
				if declared {
					assert.Equal(t, int64(size), resp.ContentLength)
				} else {
					assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
				}
				c := taskCounts(t, tr, "deepseek", TaskDefault)
				if fits {
					assert.Equal(t, int64(7), c.InputTokens)
				} else {
					assert.Equal(t, int64(1), c.UnknownUsage)
				}
			})
		}
	}
}
