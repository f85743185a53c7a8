package ccrusage

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"syscall"
)

// DefaultMaxBodyBytes is the size bound, in bytes, that Transport applies
// to the request and JSON response bodies it reads when
// Transport.MaxBodyBytes is zero or less.
const DefaultMaxBodyBytes = 8 << 20

// HealthReporter receives transport errors which show that
// claude-code-router itself is unavailable, so that a health monitor need
// not wait for its next probe. ReportUnavailable is called on the
// goroutine of the failed request and must be safe for concurrent use.
type HealthReporter interface {
	ReportUnavailable(err error)
}

// Transport is an http.RoundTripper that records the requests a service
// sends to claude-code-router (CCR) in a Tracker. Wrap the transport of the
// *http.Client that talks to CCR:
//
//	client := &http.Client{Transport: &ccrusage.Transport{Tracker: tracker, Config: cfg}}
//
// Only a POST to a path ending in /v1/messages is recorded, because that
// is where CCR's Router runs. Everything else, /v1/messages/count_tokens
// included, goes to Base untouched and uncounted. For a recorded request,
// Transport:
//
//   - reads the request body, up to MaxBodyBytes, and classifies it as
//     CCR 2.0.0's Router does. The rules, first match wins: a
//     "provider,model" model, long context, a subagent tag, a claude haiku
//     model (background), a web_search tool (webSearch), a thinking field
//     (think), else default. A route set on the request's context with
//     WithRoute takes precedence.
//   - calls Tracker.Begin with the route's provider and task type and the
//     estimated input tokens (EstimateTokens);
//   - sends the request through Base with the same bytes;
//   - settles the request when the response ends (see below).
//
// A body larger than MaxBodyBytes is forwarded without being held in
// memory whole. Such a body, and one that is not a JSON object, is
// recorded under ProviderUnknown and TaskDefault with an estimate of zero. A
// provider or task name that the Tracker rejects, such as one longer than
// MaxNameLength, is replaced by ProviderUnknown, then by TaskDefault.
//
// A transport error or a non-2xx status settles the request with
// Request.Fail. Connection refused, and a connection that CCR closed or
// reset before responding, are also passed to Health. A 2xx response is
// settled with the usage its body reports, read as the caller reads the
// body: the "usage" object of a JSON body, or for a text/event-stream body
// the usage of message_start merged with that of the last message_delta.
// It is settled when the caller reads the body to its end or closes it,
// or when reading it fails, with whatever usage was read by then. A read
// that fails because CCR closed or reset the connection is also passed to
// Health. Usage that is missing or all zero
// is settled with Request.FinishUnknown, not billed as zero. A body that
// the caller neither reads to the end nor closes leaves the request
// unsettled, as it also leaves the connection open.
//
// CCR 2.x may serve a request from a fallback provider when the routed one
// returns an HTTP error. Transport detects this from the response's model.
// When the CCR config does not list that model under the routed provider
// but lists it under another, the request is settled with Request.FinishOn
// that provider. Among several, the task's fallback entries come first,
// then the first provider in file order. A model that no provider lists, or a
// routed provider that the config does not list, leaves the usage on the
// routed provider.
//
// Transport never changes the bytes sent or received and never fails a
// call that Base completes: recording errors are absorbed as described
// above. Of the headers it reads only the response's Content-Type, and it
// keeps no API key. The request body is read
// before the request is sent, so a body that waits for the response to
// make progress deadlocks. A JSON response body longer than MaxBodyBytes,
// or one with a Content-Encoding that Base did not decode, is settled with
// FinishUnknown.
//
// A Transport is safe for concurrent use once its fields are set. Do not
// change them while it is in use. The zero value forwards through
// http.DefaultTransport and records nothing, because Tracker is nil.
type Transport struct {
	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// Tracker records the requests. Nil means requests are forwarded
	// without being recorded.
	Tracker *Tracker
	// Config contains the providers' model lists and the Router entries
	// that classification uses. Nil means every classification rule
	// applies and every provider is ProviderUnknown unless the request
	// names it.
	Config *CCRConfig
	// Health, if not nil, receives transport errors that show CCR is down.
	Health HealthReporter
	// LongContextThreshold overrides Config.LongContextThreshold, in
	// tokens. Zero means Config's value, or DefaultLongContextThreshold
	// without a Config.
	LongContextThreshold int64
	// MaxBodyBytes bounds the request and JSON response bodies that
	// Transport reads, in bytes. Zero or less means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip sends req through Base and records it, as the Transport
// documentation describes. It returns what Base returns.
func (tp *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := tp.base()
	if tp.Tracker == nil || req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/v1/messages") {
		return base.RoundTrip(req)
	}

	// Classify the body, then send the same bytes.
	out, body, complete := tp.readBody(req)
	r := route{provider: ProviderUnknown, task: TaskDefault}
	if complete {
		if classified, ok := classify(tp.Config, body, tp.LongContextThreshold); ok {
			r = classified
		}
	}
	r = applyOverride(req.Context(), tp.Config, r)
	pending, r := tp.begin(r)

	resp, err := base.RoundTrip(out)
	if err != nil {
		_ = pending.Fail()
		tp.reportHealth(err)
		return resp, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_ = pending.Fail()
		return resp, nil
	}
	tp.watchBody(resp, pending, r)
	return resp, nil
}

// CloseIdleConnections closes the idle connections of Base, if it has such
// a method, so that http.Client.CloseIdleConnections reaches it.
func (tp *Transport) CloseIdleConnections() {
	if c, ok := tp.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (tp *Transport) base() http.RoundTripper {
	if tp.Base == nil {
		return http.DefaultTransport
	}
	return tp.Base
}

func (tp *Transport) maxBodyBytes() int64 {
	if tp.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return tp.MaxBodyBytes
}

// readBody reads req's body, up to the size bound, and returns the request
// to send in req's place: a shallow copy whose body yields the same bytes
// and closes req's body when it is closed. complete reports whether body
// contains the whole request body. GetBody and ContentLength stay as the
// caller set them, because the bytes do not change.
func (tp *Transport) readBody(req *http.Request) (out *http.Request, body []byte, complete bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil, true
	}
	limit := tp.maxBodyBytes()
	if req.ContentLength > limit {
		return req, nil, false
	}

	// Read one byte past the limit to tell a body that fits from one that
	// does not.
	readLimit := limit
	if readLimit < math.MaxInt64 {
		readLimit++
	}
	body, err := readAllSized(io.LimitReader(req.Body, readLimit), req.ContentLength)
	out = req.WithContext(req.Context())
	switch {
	case err != nil:
		// Base gets the same error when it reads that far.
		out.Body = readCloser{io.MultiReader(bytes.NewReader(body), errorReader{err}), req.Body}
		return out, nil, false
	case int64(len(body)) > limit:
		// Send what was read, then the rest, without holding it.
		out.Body = readCloser{io.MultiReader(bytes.NewReader(body), req.Body), req.Body}
		return out, nil, false
	}
	// The whole body is in memory: close the caller's and send a reader
	// that net/http recognizes as in memory, so that it writes the headers
	// and the body in one go instead of flushing the headers first.
	_ = req.Body.Close()
	out.Body = io.NopCloser(bytes.NewReader(body))
	return out, body, true
}

// readAllSized reads r to its end as io.ReadAll does, but starts with a
// buffer of size+1 bytes when size is positive, so that a body of the
// declared length is read into one allocation. The extra byte lets the
// final read return io.EOF without growing the buffer. The initial buffer
// is at most maxPresizeBytes+1, because size comes from the caller's
// Content-Length and may be far above the body that follows. A longer
// body grows the buffer as io.ReadAll would.
func readAllSized(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	buf := make([]byte, 0, min(size, maxPresizeBytes)+1)
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			// Let append pick the next capacity.
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// begin records the start of a request on route r and returns the route
// it was recorded under.
func (tp *Transport) begin(r route) (Request, route) {
	pending, err := tp.Tracker.Begin(r.provider, r.task, r.estimate)
	if err == nil {
		return pending, r
	}
	r.provider, r.named = ProviderUnknown, false
	if pending, err = tp.Tracker.Begin(r.provider, r.task, r.estimate); err == nil {
		return pending, r
	}
	// ProviderUnknown and TaskDefault pass every name check, so this Begin
	// does not fail.
	r.task = TaskDefault
	pending, _ = tp.Tracker.Begin(r.provider, r.task, r.estimate)
	return pending, r
}

// watchBody replaces the body of a 2xx response with one that settles
// pending when the caller has read it to its end or closed it.
func (tp *Transport) watchBody(resp *http.Response, pending Request, r route) {
	if resp.Body == nil || resp.Body == http.NoBody {
		_ = pending.FinishUnknown()
		return
	}
	var scanner usageScanner
	if isEventStream(resp.Header) {
		scanner = new(sseScanner)
	} else {
		scanner = newJSONScanner(int(min(tp.maxBodyBytes(), math.MaxInt)), resp.ContentLength)
	}
	resp.Body = newBodyTap(resp.Body, scanner, func(info responseInfo) {
		tp.settle(pending, r, info)
	})
}

// settle settles pending with what the response reported, on the
// provider that served it.
func (tp *Transport) settle(pending Request, r route, info responseInfo) {
	if info.readErr != nil {
		tp.reportHealth(info.readErr)
	}
	serving := tp.Config.servingProvider(info.model, r.provider, r.task)

	if !info.usage.billable() {
		if serving == r.provider {
			_ = pending.FinishUnknown()
			return
		}
		// Request.FinishOn needs a usage. Without one, record the
		// fallback and the served request in two steps.
		next, err := tp.Tracker.Begin(serving, r.task, r.estimate)
		if err != nil {
			_ = pending.FinishUnknown()
			return
		}
		_ = pending.Fallback()
		_ = next.FinishUnknown()
		return
	}

	u := info.usage.usage()
	if serving == r.provider || pending.FinishOn(serving, u) != nil {
		_ = pending.Finish(u)
	}
}

// reportHealth passes err to Health when it shows that CCR is down: the
// connection was refused, or CCR closed or reset it.
func (tp *Transport) reportHealth(err error) {
	if tp.Health == nil {
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		tp.Health.ReportUnavailable(err)
	}
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}

// errorReader returns err from every Read.
type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }
