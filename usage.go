package ccrusage

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"sync"
)

// Indexes of the token kinds in reportedUsage.tokens.
const (
	usageInput = iota
	usageOutput
	usageCacheRead
	usageCacheCreation
	usageKinds
)

// reportedUsage is token usage as a response reports it. A field that the
// response leaves out is unknown, which is not the same as zero: CCR drops
// cache_creation_input_tokens for OpenAI-format upstreams.
type reportedUsage struct {
	tokens [usageKinds]int64
	// known has bit 1<<i set when tokens[i] was reported.
	known uint8
}

func (u reportedUsage) has(kind int) bool { return u.known&(1<<kind) != 0 }

func (u *reportedUsage) set(kind int, n int64) {
	u.tokens[kind] = n
	u.known |= 1 << kind
}

// usage returns the reported counts, with zero for unknown kinds.
func (u reportedUsage) usage() Usage {
	return Usage{
		InputTokens:         u.tokens[usageInput],
		OutputTokens:        u.tokens[usageOutput],
		CacheReadTokens:     u.tokens[usageCacheRead],
		CacheCreationTokens: u.tokens[usageCacheCreation],
	}
}

// billable reports whether u has a non-zero count. Usage that is missing
// or all zero on a successful response is not billed as zero: CCR reports
// all zeros when it loses a stream's usage.
func (u reportedUsage) billable() bool {
	return u.tokens != [usageKinds]int64{}
}

// mergeStreamUsage merges the usage of a stream's message_start event with
// that of its last message_delta, kind by kind: the delta's count when it
// is known and non-zero, else the start's count when known, else the
// delta's. Anthropic-format upstreams put input and cache counts in
// message_start and output in message_delta; OpenAI-format upstreams
// behind CCR put zeros in message_start and every count in message_delta.
func mergeStreamUsage(start, delta reportedUsage) reportedUsage {
	var merged reportedUsage
	for kind := 0; kind < usageKinds; kind++ {
		switch {
		case delta.has(kind) && delta.tokens[kind] != 0:
			merged.set(kind, delta.tokens[kind])
		case start.has(kind):
			merged.set(kind, start.tokens[kind])
		case delta.has(kind):
			merged.set(kind, delta.tokens[kind])
		}
	}
	return merged
}

// usageFields are the keys of a Messages API usage object, by token kind.
var usageFields = [usageKinds]string{
	usageInput:         "input_tokens",
	usageOutput:        "output_tokens",
	usageCacheRead:     "cache_read_input_tokens",
	usageCacheCreation: "cache_creation_input_tokens",
}

// parseUsage reads a usage object, which must be valid JSON. Counts that
// are absent, null or not numbers are unknown. Keys match as
// encoding/json matches struct fields, ignoring case, and the last of
// duplicate keys wins.
func parseUsage(raw json.RawMessage) reportedUsage {
	var values [usageKinds][]byte
	readMembers(raw, usageFields[:], values[:])

	var u reportedUsage
	for kind, value := range values {
		if n, ok := tokenCount(value); ok {
			u.set(kind, n)
		}
	}
	return u
}

// tokenCount reads a JSON number as a token count. A fraction is truncated
// and a value beyond the int64 range saturates.
func tokenCount(raw json.RawMessage) (int64, bool) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64, true
	case f <= math.MinInt64:
		return math.MinInt64, true
	}
	return int64(f), true
}

// messageFields returns the "model" and "usage" members of a Messages
// API message, which must be valid JSON, or nil for those that are
// missing or when msg is not an object. Keys match as encoding/json
// matches struct fields, ignoring case, and the last of duplicate keys
// wins.
func messageFields(msg []byte) (model, usage []byte) {
	var values [2][]byte
	readMembers(msg, messageMembers[:], values[:])
	return values[0], values[1]
}

// messageMembers are the keys that messageFields reads, in its result
// order.
var messageMembers = [2]string{"model", "usage"}

// responseInfo is the model and usage that a response body reports.
type responseInfo struct {
	// model is the upstream model that served the request, or "".
	model string
	usage reportedUsage
	// readErr is the error, other than io.EOF, that ended the body early.
	readErr error
}

// parseMessage reads the model and usage of a JSON Messages API response.
// A body that is not a JSON object reports nothing.
func parseMessage(body []byte) responseInfo {
	if !json.Valid(body) {
		return responseInfo{}
	}
	rawModel, rawUsage := messageFields(body)
	model, _ := jsonString(rawModel)
	return responseInfo{model: model, usage: parseUsage(rawUsage)}
}

// usageScanner reads a response body's usage from the bytes the caller
// reads. Implementations need no locking: bodyTap serializes the calls.
type usageScanner interface {
	// scan consumes the next bytes of the body.
	scan(p []byte)
	// result returns what the bytes scanned so far report.
	result() responseInfo
}

// jsonScanner keeps a copy of a JSON response body, up to max bytes, to
// parse once the body ends.
type jsonScanner struct {
	max      int
	buf      []byte
	overflow bool
}

// maxPresizeBytes bounds the buffers that Transport allocates up front
// from a request's or a response's declared length, so that a length far
// larger than the body that follows costs no more than this.
const maxPresizeBytes = 1 << 20

// newJSONScanner returns a jsonScanner that keeps up to max bytes. A
// positive size, the body's declared length, sets the capacity of the
// copy, up to maxPresizeBytes, so that a body that fits is copied into
// one allocation.
func newJSONScanner(max int, size int64) *jsonScanner {
	s := &jsonScanner{max: max}
	if size > 0 && size <= int64(max) {
		s.buf = make([]byte, 0, min(size, maxPresizeBytes))
	}
	return s
}

func (s *jsonScanner) scan(p []byte) {
	if s.overflow {
		return
	}
	if len(s.buf)+len(p) > s.max {
		s.overflow, s.buf = true, nil
		return
	}
	s.buf = append(s.buf, p...)
}

// result parses the copy, even when the body was closed before its end,
// because a caller that decodes the body with a json.Decoder may stop
// reading before io.EOF. A body past max or cut short reports nothing.
func (s *jsonScanner) result() responseInfo {
	if s.overflow {
		return responseInfo{}
	}
	return parseMessage(s.buf)
}

// bodyTap is a response body that passes every byte through to the caller
// unchanged and in the same Read call, while a usageScanner reads it. It
// calls onDone exactly once: when a Read returns an error, io.EOF
// included, or at the first Close, whichever comes first. A body that the
// caller neither reads to the end nor closes never calls it.
type bodyTap struct {
	rc     io.ReadCloser
	onDone func(responseInfo)

	mu      sync.Mutex // guards scanner and done
	scanner usageScanner
	done    bool
}

func newBodyTap(rc io.ReadCloser, scanner usageScanner, onDone func(responseInfo)) *bodyTap {
	return &bodyTap{rc: rc, scanner: scanner, onDone: onDone}
}

// Read reads from the underlying body. It holds no lock while the body
// blocks, so Close from another goroutine can interrupt it as usual.
func (b *bodyTap) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)

	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return n, err
	}
	b.scanner.scan(p[:n])
	if err == nil {
		b.mu.Unlock()
		return n, err
	}
	info := b.finishLocked()
	if err != io.EOF {
		info.readErr = err
	}
	b.mu.Unlock()

	b.onDone(info)
	return n, err
}

// Close settles with what was read so far, if nothing settled before, and
// closes the underlying body.
func (b *bodyTap) Close() error {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return b.rc.Close()
	}
	info := b.finishLocked()
	b.mu.Unlock()

	b.onDone(info)
	return b.rc.Close()
}

func (b *bodyTap) finishLocked() responseInfo {
	b.done = true
	info := b.scanner.result()
	b.scanner = nil
	return info
}
