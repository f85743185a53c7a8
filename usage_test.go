package ccrusage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// known returns a reportedUsage with every kind known.
func known(input, output, cacheRead, cacheCreation int64) reportedUsage {
	var u reportedUsage
	for kind, n := range []int64{input, output, cacheRead, cacheCreation} {
		u.set(kind, n)
	}
	return u
}

// partial returns a reportedUsage with the kinds in counts known.
func partial(counts map[int]int64) reportedUsage {
	var u reportedUsage
	for kind, n := range counts {
		u.set(kind, n)
	}
	return u
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantModel string
		want      reportedUsage
	}{
		{
			"anthropic format",
			`{"id":"msg_1","model":"claude-sonnet-4-20250514","usage":{"input_tokens":120,"output_tokens":42,"cache_creation_input_tokens":8,"cache_read_input_tokens":20}}`,
			"claude-sonnet-4-20250514", known(120, 42, 20, 8),
		},
		{
			"openai format through CCR",
			`{"model":"deepseek-chat","usage":{"input_tokens":120,"output_tokens":42,"cache_read_input_tokens":20}}`,
			"deepseek-chat", partial(map[int]int64{usageInput: 120, usageOutput: 42, usageCacheRead: 20}),
		},
		{"null count unknown", `{"usage":{"input_tokens":null,"output_tokens":3}}`, "", partial(map[int]int64{usageOutput: 3})},
		{"string count unknown", `{"usage":{"input_tokens":"7","output_tokens":3}}`, "", partial(map[int]int64{usageOutput: 3})},
		{"fraction truncated", `{"usage":{"input_tokens":7.9}}`, "", partial(map[int]int64{usageInput: 7})},
		{"exponent", `{"usage":{"input_tokens":1e3}}`, "", partial(map[int]int64{usageInput: 1000})},
		{"huge saturates", `{"usage":{"input_tokens":1e300}}`, "", partial(map[int]int64{usageInput: math.MaxInt64})},
		{"negative kept", `{"usage":{"output_tokens":-4}}`, "", partial(map[int]int64{usageOutput: -4})},
		{"no usage", `{"model":"m"}`, "m", reportedUsage{}},
		{"usage not object", `{"model":"m","usage":[1]}`, "m", reportedUsage{}},
		{"model not string", `{"model":1,"usage":{"input_tokens":1}}`, "", partial(map[int]int64{usageInput: 1})},
		{"not JSON", `<html>`, "", reportedUsage{}},
		{"truncated", `{"model":"m","usage":{"input_tokens":1`, "", reportedUsage{}},
		{"empty", ``, "", reportedUsage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseMessage([]byte(tt.body))
			assert.Equal(t, tt.wantModel, got.model)
			assert.Equal(t, tt.want, got.usage)
		})
	}
}

func TestMergeStreamUsage(t *testing.T) {
	tests := []struct {
		name  string
		start reportedUsage
		delta reportedUsage
		want  reportedUsage
	}{
		{
			"anthropic split",
			known(120, 1, 20, 8),
			partial(map[int]int64{usageOutput: 42}),
			known(120, 42, 20, 8),
		},
		{
			"openai all in delta",
			partial(map[int]int64{usageInput: 0, usageOutput: 0}),
			partial(map[int]int64{usageInput: 120, usageOutput: 42, usageCacheRead: 20}),
			partial(map[int]int64{usageInput: 120, usageOutput: 42, usageCacheRead: 20}),
		},
		{
			"zero delta keeps start",
			known(120, 1, 0, 0),
			known(0, 42, 0, 0),
			known(120, 42, 0, 0),
		},
		{
			"delta wins when both non-zero",
			known(120, 1, 0, 0),
			known(130, 42, 0, 0),
			known(130, 42, 0, 0),
		},
		{
			"zero only in delta",
			reportedUsage{},
			partial(map[int]int64{usageCacheRead: 0}),
			partial(map[int]int64{usageCacheRead: 0}),
		},
		{"nothing known", reportedUsage{}, reportedUsage{}, reportedUsage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, mergeStreamUsage(tt.start, tt.delta))
		})
	}
}

func TestReportedUsageBillable(t *testing.T) {
	assert.False(t, reportedUsage{}.billable(), "nothing known")
	assert.False(t, known(0, 0, 0, 0).billable(), "all zero")
	assert.True(t, partial(map[int]int64{usageOutput: 1}).billable(), "one count")
	assert.True(t, partial(map[int]int64{usageInput: -1}).billable(), "negative count")
}

func TestReportedUsageUsage(t *testing.T) {
	assert.Equal(t, Usage{InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3, CacheCreationTokens: 4}, known(1, 2, 3, 4).usage())
}

func TestJSONScannerOverflow(t *testing.T) {
	body := []byte(`{"model":"m","usage":{"input_tokens":5}}`)
	s := &jsonScanner{max: len(body) - 1}
	s.scan(body[:10])
	s.scan(body[10:])
	assert.Equal(t, responseInfo{}, s.result())
}

func TestJSONScannerExactLimit(t *testing.T) {
	body := []byte(`{"model":"m","usage":{"input_tokens":5}}`)
	s := &jsonScanner{max: len(body)}
	s.scan(body)
	assert.Equal(t, "m", s.result().model)
}

// tapResult reads body to its end through a bodyTap with scanner, closes
// the tap, and returns what the tap settled with and the bytes read.
func tapResult(t *testing.T, body io.Reader, scanner usageScanner) (responseInfo, []byte) {
	t.Helper()
	var infos []responseInfo
	tap := newBodyTap(io.NopCloser(body), scanner, func(info responseInfo) { infos = append(infos, info) })
	got, err := io.ReadAll(tap)
	require.NoError(t, err)
	require.NoError(t, tap.Close())
	require.Len(t, infos, 1, "settled once")
	return infos[0], got
}

func TestBodyTapJSONOneByteReads(t *testing.T) {
	body := `{"model":"deepseek-chat","usage":{"input_tokens":120,"output_tokens":42}}`
	info, got := tapResult(t, iotest.OneByteReader(strings.NewReader(body)), &jsonScanner{max: 1 << 20})
	assert.Equal(t, body, string(got))
	assert.Equal(t, "deepseek-chat", info.model)
	assert.Equal(t, partial(map[int]int64{usageInput: 120, usageOutput: 42}), info.usage)
}

func TestBodyTapDecoderStopsBeforeEOF(t *testing.T) {
	// A json.Decoder stops after the value and may never see io.EOF. The
	// usage still counts when the caller then closes the body.
	body := `{"model":"m","usage":{"output_tokens":3}}`
	var infos []responseInfo
	tap := newBodyTap(io.NopCloser(strings.NewReader(body+"\n")), &jsonScanner{max: 1 << 20}, func(info responseInfo) { infos = append(infos, info) })

	var v map[string]any
	require.NoError(t, json.NewDecoder(tap).Decode(&v))
	require.NoError(t, tap.Close())
	require.Len(t, infos, 1)
	assert.Equal(t, partial(map[int]int64{usageOutput: 3}), infos[0].usage)
}

func TestBodyTapCloseBeforeEnd(t *testing.T) {
	body := `{"model":"m","usage":{"output_tokens":3}}`
	var infos []responseInfo
	tap := newBodyTap(io.NopCloser(strings.NewReader(body)), &jsonScanner{max: 1 << 20}, func(info responseInfo) { infos = append(infos, info) })

	_, err := tap.Read(make([]byte, 10))
	require.NoError(t, err)
	require.NoError(t, tap.Close())
	require.NoError(t, tap.Close())
	_, err = tap.Read(make([]byte, 100))
	require.NoError(t, err, "the underlying body still reads after a NopCloser")

	require.Len(t, infos, 1)
	assert.Equal(t, responseInfo{}, infos[0])
}

func TestBodyTapReadError(t *testing.T) {
	failure := errors.New("connection reset")
	body := io.MultiReader(strings.NewReader(`{"model":"m"`), iotest.ErrReader(failure))
	var infos []responseInfo
	tap := newBodyTap(io.NopCloser(body), &jsonScanner{max: 1 << 20}, func(info responseInfo) { infos = append(infos, info) })

	_, err := io.ReadAll(tap)
	assert.ErrorIs(t, err, failure)
	require.NoError(t, tap.Close())
	assert.Len(t, infos, 1)
}

// closeCounter counts Close calls.
type closeCounter struct {
	io.Reader
	closes int
}

func (c *closeCounter) Close() error {
	c.closes++
	return nil
}

func TestBodyTapClosesUnderlyingBody(t *testing.T) {
	rc := &closeCounter{Reader: strings.NewReader("{}")}
	tap := newBodyTap(rc, &jsonScanner{max: 10}, func(responseInfo) {})
	require.NoError(t, tap.Close())
	require.NoError(t, tap.Close())
	assert.Equal(t, 2, rc.closes)
}

func TestBodyTapConcurrentCloseAndRead(t *testing.T) {
	pr, pw := io.Pipe()
	var mu sync.Mutex
	settled := 0
	tap := newBodyTap(pr, new(sseScanner), func(responseInfo) {
		mu.Lock()
		settled++
		mu.Unlock()
	})

	done := make(chan error)
	go func() {
		_, err := io.Copy(io.Discard, tap)
		done <- err
	}()
	_, err := pw.Write([]byte("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5}}}\n\n"))
	require.NoError(t, err)
	require.NoError(t, tap.Close())
	assert.ErrorIs(t, <-done, io.ErrClosedPipe)

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, settled)
}

func TestTokenCount(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"42", 42, true},
		{" 42 ", 42, true},
		{"-3", -3, true},
		{"4.99", 4, true},
		{"1e2", 100, true},
		{"9223372036854775808", math.MaxInt64, true},
		{"-1e400", math.MinInt64, true},
		{"", 0, false},
		{"null", 0, false},
		{`"5"`, 0, false},
		{"true", 0, false},
		{"-", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := tokenCount(json.RawMessage(tt.in))
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantOK, ok)
		})
	}
}

// FuzzJSONUsage checks that parsing any body never panics, reports zero for
// unknown counts, gives the same result through a bodyTap in small reads,
// and agrees with a generic decode on integer counts.
func FuzzJSONUsage(f *testing.F) {
	for _, seed := range []string{
		`{"model":"deepseek-chat","usage":{"input_tokens":120,"output_tokens":42,"cache_read_input_tokens":20}}`,
		`{"model":"claude-sonnet-4-20250514","usage":{"input_tokens":120,"output_tokens":42,"cache_creation_input_tokens":8,"cache_read_input_tokens":20}}`,
		`{"usage":{"input_tokens":0,"output_tokens":0}}`,
		`{"usage":{"input_tokens":1.5e3,"output_tokens":"x","cache_read_input_tokens":null}}`,
		`{"usage":null}`,
		`{"error":{"type":"api_error","message":"boom"}}`,
		`[]`,
		`{"model":"m","usage":{"input_tokens":-9223372036854775809}}`,
	} {
		f.Add([]byte(seed), uint8(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		direct := parseMessage(body)
		for kind := 0; kind < usageKinds; kind++ {
			if !direct.usage.has(kind) {
				require.Zero(t, direct.usage.tokens[kind], "unknown kind %d", kind)
			}
		}

		tapped, passed := tapResult(t, iotest.HalfReader(&chunkReader{data: body, size: int(chunk%16) + 1}), &jsonScanner{max: len(body)})
		require.Equal(t, body, passed)
		require.Equal(t, direct, tapped)

		checkAgainstGenericDecode(t, body, direct)
	})
}

// checkAgainstGenericDecode compares the usage counts of body decoded into
// maps with got, for integer counts whose keys appear exactly once in any
// letter case (encoding/json matches struct fields case-insensitively).
func checkAgainstGenericDecode(t *testing.T, body []byte, got responseInfo) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top map[string]any
	if dec.Decode(&top) != nil || dec.More() {
		return
	}
	usage, ok := onlyKey(top, "usage").(map[string]any)
	if !ok {
		return
	}
	keys := []string{"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}
	for kind, key := range keys {
		n, ok := onlyKey(usage, key).(json.Number)
		if !ok {
			continue
		}
		want, err := n.Int64()
		if err != nil {
			continue
		}
		require.True(t, got.usage.has(kind), key)
		require.Equal(t, want, got.usage.tokens[kind], key)
	}
}

// onlyKey returns m[key] when no other key of m equals key in another
// letter case, and nil otherwise.
func onlyKey(m map[string]any, key string) any {
	for k := range m {
		if k != key && strings.EqualFold(k, key) {
			return nil
		}
	}
	return m[key]
}

// chunkReader returns data in reads of at most size bytes.
type chunkReader struct {
	data []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.data)
	r.data = r.data[n:]
	return n, nil
}
