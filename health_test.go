package ccrusage

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testAPIKey is the CCR API key of the tests. It must never appear in a
// HealthStatus, an error or an alert.
const testAPIKey = "sk-ccr-test-4f9c2a7e"

// fakeCCR is a claude-code-router stand-in on 127.0.0.1 that records every
// request it receives.
type fakeCCR struct {
	server *httptest.Server

	mu       sync.Mutex // guards respond, paths and apiKeys
	respond  http.HandlerFunc
	paths    []string
	apiKeys  []string // x-api-key of each request, "(absent)" when not sent
	requests atomic.Int64
}

// newFakeCCR starts a fake CCR that responds with respond until
// setResponse replaces it.
func newFakeCCR(t *testing.T, respond http.HandlerFunc) *fakeCCR {
	t.Helper()
	f := &fakeCCR{respond: respond}
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := "(absent)"
		if values, ok := r.Header["X-Api-Key"]; ok {
			key = strings.Join(values, ",")
		}
		f.mu.Lock()
		f.paths = append(f.paths, r.URL.Path)
		f.apiKeys = append(f.apiKeys, key)
		respond := f.respond
		f.mu.Unlock()
		f.requests.Add(1)
		respond(w, r)
	}))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeCCR) URL() string { return f.server.URL }

func (f *fakeCCR) setResponse(respond http.HandlerFunc) {
	f.mu.Lock()
	f.respond = respond
	f.mu.Unlock()
}

func (f *fakeCCR) requestedPaths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

func (f *fakeCCR) receivedAPIKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.apiKeys...)
}

// respondJSON returns a handler that writes body with status code.
func respondJSON(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// Bodies of GET /health as the CCR versions send them.
const (
	bodyCCR1OK      = `{"status":"ok","timestamp":"2026-12-04T19:12:26.666Z"}`
	bodyCCR3Running = `{"status":"running"}`
)

// blackHoleCCR is a listener on 127.0.0.1 that accepts connections and
// never responds, like a hung CCR.
type blackHoleCCR struct {
	listener net.Listener
	accepted atomic.Int64
	done     chan struct{}

	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func newBlackHoleCCR(t *testing.T) *blackHoleCCR {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &blackHoleCCR{listener: ln, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, conn)
			b.mu.Unlock()
			b.accepted.Add(1)
		}
	}()
	t.Cleanup(b.close)
	return b
}

func (b *blackHoleCCR) URL() string { return "http://" + b.listener.Addr().String() }

// close stops accepting, closes every held connection and waits for the
// accept loop to end, so the test leaves no goroutine behind.
func (b *blackHoleCCR) close() {
	_ = b.listener.Close()
	<-b.done
	b.mu.Lock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.conns = nil
	b.mu.Unlock()
}

// closedCCRURL returns the URL of a port on 127.0.0.1 that nothing listens
// on, so connections are refused.
func closedCCRURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// healthSink is an AlertSink that keeps the alerts it receives.
type healthSink struct {
	mu     sync.Mutex // guards alerts
	alerts []Alert
}

func (s *healthSink) Send(a Alert) {
	s.mu.Lock()
	s.alerts = append(s.alerts, a)
	s.mu.Unlock()
}

func (s *healthSink) received() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Alert(nil), s.alerts...)
}

// countingClock is a ManualClock that counts its readings.
type countingClock struct {
	ManualClock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time {
	c.reads.Add(1)
	return c.ManualClock.Now()
}

func mustHealthChecker(t *testing.T, cfg HealthConfig) *HealthChecker {
	t.Helper()
	hc, err := NewHealthChecker(cfg)
	require.NoError(t, err)
	return hc
}

// testHealthTimeout keeps probes of unresponsive servers short in tests.
const testHealthTimeout = 200 * time.Millisecond

func TestNewHealthCheckerInvalidConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     HealthConfig
		wantErr string
	}{
		{"missing URL", HealthConfig{}, "missing HealthConfig.URL"},
		{"ftp scheme", HealthConfig{URL: "ftp://127.0.0.1:3456"}, `"ftp://127.0.0.1:3456": scheme must be http or https`},
		{"no scheme", HealthConfig{URL: "127.0.0.1:3456"}, `"127.0.0.1:3456"`},
		{"unparsable", HealthConfig{URL: "http://127.0.0.1:34x6"}, `"http://127.0.0.1:34x6"`},
		{"missing host", HealthConfig{URL: "http:///health"}, `"http:///health": missing host`},
		{"query", HealthConfig{URL: "http://127.0.0.1:3456?a=b"}, `"http://127.0.0.1:3456?a=b": must have no query or fragment`},
		{"fragment", HealthConfig{URL: "http://127.0.0.1:3456#x"}, "must have no query or fragment"},
		{"password redacted", HealthConfig{URL: "ftp://user:secret@127.0.0.1"}, `"ftp://user:xxxxx@127.0.0.1"`},
		{"negative timeout", HealthConfig{URL: "http://127.0.0.1:3456", Timeout: -time.Second}, "invalid HealthConfig.Timeout -1s"},
		{"negative interval", HealthConfig{URL: "http://127.0.0.1:3456", Interval: -time.Second}, "invalid HealthConfig.Interval -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc, err := NewHealthChecker(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, hc)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "ccrusage: "), err.Error())
			assert.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestHealthCheckerStatusBeforeProbe(t *testing.T) {
	hc := mustHealthChecker(t, HealthConfig{URL: "http://user:secret@127.0.0.1:3456/"})

	s := hc.Status()
	assert.Equal(t, HealthUnknown, s.State)
	assert.Equal(t, "http://127.0.0.1:3456", s.URL)
	assert.True(t, s.CheckedAt.IsZero())

	data, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"state":"unknown","ccr_status":"","error":"","checked_at":null,"url":"http://127.0.0.1:3456"}`, string(data))
}

func TestHealthStatusJSON(t *testing.T) {
	s := HealthStatus{
		State:     HealthUnavailable,
		CCRStatus: "stopped",
		Error:     "GET http://127.0.0.1:3456/health: boom",
		CheckedAt: base,
		URL:       "http://127.0.0.1:3456",
	}
	data, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"state": "unavailable",
		"ccr_status": "stopped",
		"error": "GET http://127.0.0.1:3456/health: boom",
		"checked_at": "2026-10-14T12:00:00-07:00",
		"url": "http://127.0.0.1:3456"
	}`, string(data))

	// Every field of HealthStatus must be in its MarshalJSON.
	var keys map[string]any
	require.NoError(t, json.Unmarshal(data, &keys))
	assert.Len(t, keys, reflect.TypeOf(s).NumField())

	var decoded HealthStatus
	require.NoError(t, json.Unmarshal(data, &decoded))
	assert.True(t, decoded.CheckedAt.Equal(base))
	assert.Equal(t, s.State, decoded.State)
}

func TestCheckResponses(t *testing.T) {
	tests := []struct {
		name          string
		respond       http.HandlerFunc
		wantState     HealthState
		wantCCRStatus string
		wantErr       string
	}{
		{"ccr1 ok", respondJSON(200, bodyCCR1OK), HealthAvailable, "ok", ""},
		{"ccr3 running", respondJSON(200, bodyCCR3Running), HealthAvailable, "running", ""},
		{"204 with status", respondJSON(204, ""), HealthUnavailable, "", "invalid JSON response"},
		{"ccr3 stopped", respondJSON(200, `{"status":"stopped"}`), HealthUnavailable, "stopped", `status "stopped" means not available`},
		{"ccr3 starting", respondJSON(200, `{"status":"starting"}`), HealthUnavailable, "starting", `status "starting"`},
		{"ccr3 error", respondJSON(200, `{"status":"error"}`), HealthUnavailable, "error", `status "error"`},
		{"unknown status", respondJSON(200, `{"status":"paused"}`), HealthUnavailable, "paused", `status "paused"`},
		{"status case", respondJSON(200, `{"status":"OK"}`), HealthUnavailable, "OK", `status "OK"`},
		{"no status", respondJSON(200, `{"healthy":true}`), HealthUnavailable, "", `response has no "status" field`},
		{"status not string", respondJSON(200, `{"status":1}`), HealthUnavailable, "", "invalid JSON response"},
		{"json null", respondJSON(200, `null`), HealthUnavailable, "", `response has no "status" field`},
		{"not json", respondJSON(200, `<html>ok</html>`), HealthUnavailable, "", "invalid JSON response"},
		{"empty body", respondJSON(200, ``), HealthUnavailable, "", "invalid JSON response"},
		{"server error", respondJSON(500, bodyCCR1OK), HealthUnavailable, "", "unexpected HTTP status 500 Internal Server Error, want 2xx"},
		{"unavailable", respondJSON(503, `{"status":"ok"}`), HealthUnavailable, "", "unexpected HTTP status 503"},
		{"not found", respondJSON(404, `{}`), HealthUnavailable, "", "unexpected HTTP status 404"},
		{"unauthorized", respondJSON(401, `{"error":"Invalid API key"}`), HealthUnavailable, "", "unexpected HTTP status 401"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/api/config", http.StatusFound)
		}, HealthUnavailable, "", "unexpected HTTP status 302 Found"},
		{"body too large", respondJSON(200, `{"status":"ok","pad":"`+strings.Repeat("x", maxHealthBody)+`"}`), HealthUnavailable, "", "response body larger than 64 KiB"},
		{"long status clipped", respondJSON(200, `{"status":"`+strings.Repeat("é", 100)+`"}`), HealthUnavailable, strings.Repeat("é", 32), "means not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccr := newFakeCCR(t, tt.respond)
			hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Timeout: testHealthTimeout, Clock: NewManualClock(base)})

			s := hc.Check(context.Background())
			assert.Equal(t, tt.wantState, s.State)
			assert.Equal(t, tt.wantCCRStatus, s.CCRStatus)
			assert.Equal(t, ccr.URL(), s.URL)
			assert.True(t, s.CheckedAt.Equal(base))
			if tt.wantErr == "" {
				assert.Empty(t, s.Error)
			} else {
				assert.Contains(t, s.Error, tt.wantErr)
				assert.True(t, strings.HasPrefix(s.Error, "GET "+ccr.URL()+"/health: "), s.Error)
			}
			assert.LessOrEqual(t, len(s.Error), maxErrorLength)
			assert.Equal(t, []string{"/health"}, ccr.requestedPaths())
			assert.Equal(t, s, hc.Status())
		})
	}
}

func TestCheckConnectionRefused(t *testing.T) {
	url := closedCCRURL(t)
	hc := mustHealthChecker(t, HealthConfig{URL: url, Timeout: testHealthTimeout})

	start := time.Now()
	s := hc.Check(context.Background())
	assert.Less(t, time.Since(start), testHealthTimeout, "a refused connection should fail at once")
	assert.Equal(t, HealthUnavailable, s.State)
	assert.Contains(t, s.Error, "connection refused")
	assert.True(t, strings.HasPrefix(s.Error, "GET "+url+"/health: "), s.Error)
}

func TestCheckBlackHoleTimesOut(t *testing.T) {
	hole := newBlackHoleCCR(t)
	hc := mustHealthChecker(t, HealthConfig{URL: hole.URL(), Timeout: testHealthTimeout})

	start := time.Now()
	s := hc.Check(context.Background())
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, testHealthTimeout)
	assert.Less(t, elapsed, 2*time.Second)
	assert.Equal(t, HealthUnavailable, s.State)
	assert.Equal(t, "GET "+hole.URL()+"/health: timed out after 200ms", s.Error)
	assert.Equal(t, int64(1), hole.accepted.Load())
}

func TestCheckBodyStallTimesOut(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ccr := newFakeCCR(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"status":`))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Timeout: testHealthTimeout})

	s := hc.Check(context.Background())
	assert.Equal(t, HealthUnavailable, s.State)
	assert.Contains(t, s.Error, "timed out after 200ms")
}

func TestCheckCachesForInterval(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	clock := NewManualClock(base)
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock})

	first := hc.Check(context.Background())
	require.Equal(t, HealthAvailable, first.State)
	assert.Equal(t, int64(1), ccr.requests.Load())

	// Within the default 5 s interval the result is reused, even after CCR
	// went down.
	ccr.setResponse(respondJSON(503, ""))
	clock.Advance(DefaultHealthInterval - time.Millisecond)
	cached := hc.Check(context.Background())
	assert.Equal(t, first, cached)
	assert.Equal(t, int64(1), ccr.requests.Load())

	clock.Advance(time.Millisecond)
	fresh := hc.Check(context.Background())
	assert.Equal(t, HealthUnavailable, fresh.State)
	assert.True(t, fresh.CheckedAt.Equal(base.Add(DefaultHealthInterval)))
	assert.Equal(t, int64(2), ccr.requests.Load())
}

func TestCheckCustomInterval(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	clock := NewManualClock(base)
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, Interval: time.Minute})

	hc.Check(context.Background())
	clock.Advance(59 * time.Second)
	hc.Check(context.Background())
	assert.Equal(t, int64(1), ccr.requests.Load())

	clock.Advance(time.Second)
	hc.Check(context.Background())
	assert.Equal(t, int64(2), ccr.requests.Load())
}

func TestCheckClockBackwardsProbes(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	clock := NewManualClock(base)
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock})

	hc.Check(context.Background())
	clock.Advance(-time.Second)
	s := hc.Check(context.Background())
	assert.Equal(t, int64(2), ccr.requests.Load())
	assert.True(t, s.CheckedAt.Equal(base.Add(-time.Second)))
}

func TestCheckSingleFlight(t *testing.T) {
	const callers = 20
	release := make(chan struct{})
	ccr := newFakeCCR(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		respondJSON(200, bodyCCR3Running)(w, r)
	})
	clock := &countingClock{ManualClock: *NewManualClock(base)}
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, Timeout: 5 * time.Second})

	results := make(chan HealthStatus, callers)
	for i := 0; i < callers; i++ {
		go func() { results <- hc.Check(context.Background()) }()
	}
	// Check reads the clock under the lock that also guards joining the
	// probe, so once every caller has read it, every caller waits on the
	// one probe in flight.
	require.Eventually(t, func() bool { return clock.reads.Load() == callers }, 5*time.Second, time.Millisecond)
	close(release)

	for i := 0; i < callers; i++ {
		s := <-results
		assert.Equal(t, HealthAvailable, s.State)
	}
	assert.Equal(t, int64(1), ccr.requests.Load())
}

func TestCheckCallerContextEnds(t *testing.T) {
	hole := newBlackHoleCCR(t)
	hc := mustHealthChecker(t, HealthConfig{URL: hole.URL(), Timeout: time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	early := hc.Check(ctx)
	assert.Less(t, time.Since(start), 500*time.Millisecond)
	assert.Equal(t, HealthUnknown, early.State)

	// A later caller joins the probe that is still in flight and gets its
	// result when the probe's own timeout ends it.
	late := hc.Check(context.Background())
	assert.Equal(t, HealthUnavailable, late.State)
	assert.Contains(t, late.Error, "timed out after 1s")
	assert.Equal(t, int64(1), hole.accepted.Load())
}

func TestCheckAlertsOncePerTransition(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	clock := NewManualClock(base)
	sink := &healthSink{}
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, Sink: sink, Timeout: testHealthTimeout})

	phases := []struct {
		respond http.HandlerFunc
		probes  int
		want    HealthState
	}{
		{respondJSON(200, bodyCCR1OK), 3, HealthAvailable},
		{respondJSON(503, ""), 3, HealthUnavailable},
		{respondJSON(200, "not json"), 2, HealthUnavailable},
		{respondJSON(200, `{"status":"starting"}`), 2, HealthUnavailable},
		{respondJSON(200, bodyCCR3Running), 3, HealthAvailable},
	}
	var downAt, upAt time.Time
	for _, p := range phases {
		ccr.setResponse(p.respond)
		for i := 0; i < p.probes; i++ {
			now := clock.Advance(DefaultHealthInterval)
			s := hc.Check(context.Background())
			require.Equal(t, p.want, s.State)
			if p.want == HealthUnavailable && downAt.IsZero() {
				downAt = now
			}
			if p.want == HealthAvailable && !downAt.IsZero() && upAt.IsZero() {
				upAt = now
			}
		}
	}
	assert.Equal(t, int64(13), ccr.requests.Load())

	alerts := sink.received()
	require.Len(t, alerts, 2)
	down, up := alerts[0], alerts[1]
	assert.Equal(t, AlertHealth, down.Kind)
	assert.Equal(t, LevelCritical, down.Level)
	assert.Equal(t, LevelInfo, down.Previous)
	assert.True(t, down.Time.Equal(downAt))
	assert.Empty(t, down.Provider)
	assert.Equal(t, "claude-code-router is unavailable: GET "+ccr.URL()+"/health: unexpected HTTP status 503 Service Unavailable, want 2xx", down.Message)

	assert.Equal(t, AlertHealth, up.Kind)
	assert.Equal(t, LevelInfo, up.Level)
	assert.Equal(t, LevelCritical, up.Previous)
	assert.True(t, up.Time.Equal(upAt))
	assert.Equal(t, "claude-code-router is available again", up.Message)
}

func TestCheckUnknownToUnavailableAlerts(t *testing.T) {
	sink := &healthSink{}
	clock := NewManualClock(base)
	hc := mustHealthChecker(t, HealthConfig{URL: closedCCRURL(t), Clock: clock, Sink: sink})

	for i := 0; i < 3; i++ {
		hc.Check(context.Background())
		clock.Advance(DefaultHealthInterval)
	}

	alerts := sink.received()
	require.Len(t, alerts, 1)
	assert.Equal(t, LevelCritical, alerts[0].Level)
	assert.Equal(t, LevelInfo, alerts[0].Previous)
	assert.True(t, alerts[0].Time.Equal(base))
	assert.Contains(t, alerts[0].Message, "connection refused")
}

func TestCheckRestartOnSamePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	serve := func(ln net.Listener) *httptest.Server {
		srv := httptest.NewUnstartedServer(respondJSON(200, bodyCCR1OK))
		srv.Listener = ln
		srv.Start()
		return srv
	}
	srv := serve(ln)
	t.Cleanup(srv.Close)

	clock := NewManualClock(base)
	sink := &healthSink{}
	hc := mustHealthChecker(t, HealthConfig{URL: "http://" + addr, Clock: clock, Sink: sink, Timeout: testHealthTimeout})

	assert.Equal(t, HealthAvailable, hc.Check(context.Background()).State)

	srv.Close()
	for i := 0; i < 3; i++ {
		clock.Advance(DefaultHealthInterval)
		s := hc.Check(context.Background())
		assert.Equal(t, HealthUnavailable, s.State)
		assert.Contains(t, s.Error, "connection refused")
	}

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err, "listening again on %s", addr)
	srv = serve(ln)
	t.Cleanup(srv.Close)
	for i := 0; i < 3; i++ {
		clock.Advance(DefaultHealthInterval)
		assert.Equal(t, HealthAvailable, hc.Check(context.Background()).State)
	}

	alerts := sink.received()
	require.Len(t, alerts, 2)
	assert.Equal(t, LevelCritical, alerts[0].Level)
	assert.Equal(t, LevelInfo, alerts[1].Level)
}

func TestReportUnavailable(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	clock := NewManualClock(base)
	sink := &healthSink{}
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, Sink: sink})

	require.Equal(t, HealthAvailable, hc.Check(context.Background()).State)
	reportedAt := clock.Advance(time.Second)
	hc.ReportUnavailable(errors.New("dial tcp 127.0.0.1:3456: connect: connection refused"))

	s := hc.Status()
	assert.Equal(t, HealthUnavailable, s.State)
	assert.Equal(t, "dial tcp 127.0.0.1:3456: connect: connection refused", s.Error)
	assert.Empty(t, s.CCRStatus)
	assert.True(t, s.CheckedAt.Equal(reportedAt))
	require.Len(t, sink.received(), 1)
	assert.Equal(t, LevelCritical, sink.received()[0].Level)
	assert.True(t, sink.received()[0].Time.Equal(reportedAt))
	assert.Equal(t, "claude-code-router is unavailable: dial tcp 127.0.0.1:3456: connect: connection refused", sink.received()[0].Message)

	// A second report while unavailable sends nothing more.
	hc.ReportUnavailable(nil)
	assert.Equal(t, "request to claude-code-router failed", hc.Status().Error)
	assert.Len(t, sink.received(), 1)

	// The report is cached like a probe result: no probe within Interval.
	clock.Advance(DefaultHealthInterval - time.Millisecond)
	assert.Equal(t, HealthUnavailable, hc.Check(context.Background()).State)
	assert.Equal(t, int64(1), ccr.requests.Load())

	clock.Advance(time.Millisecond)
	assert.Equal(t, HealthAvailable, hc.Check(context.Background()).State)
	assert.Equal(t, int64(2), ccr.requests.Load())
	alerts := sink.received()
	require.Len(t, alerts, 2)
	assert.Equal(t, LevelInfo, alerts[1].Level)
	assert.Equal(t, LevelCritical, alerts[1].Previous)
}

func TestReportUnavailableBeforeFirstProbe(t *testing.T) {
	sink := &healthSink{}
	hc := mustHealthChecker(t, HealthConfig{URL: "http://127.0.0.1:3456", Clock: NewManualClock(base), Sink: sink})

	hc.ReportUnavailable(errors.New("connection reset by peer"))
	assert.Equal(t, HealthUnavailable, hc.Status().State)
	alerts := sink.received()
	require.Len(t, alerts, 1)
	assert.Equal(t, LevelCritical, alerts[0].Level)
	assert.Equal(t, LevelInfo, alerts[0].Previous)
}

func TestReportUnavailableDuringProbe(t *testing.T) {
	release := make(chan struct{})
	ccr := newFakeCCR(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		respondJSON(200, bodyCCR1OK)(w, r)
	})
	clock := NewManualClock(base)
	sink := &healthSink{}
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, Sink: sink, Timeout: 5 * time.Second})

	result := make(chan HealthStatus, 1)
	go func() { result <- hc.Check(context.Background()) }()
	require.Eventually(t, func() bool { return ccr.requests.Load() == 1 }, 5*time.Second, time.Millisecond)
	hc.ReportUnavailable(errors.New("connection reset by peer"))
	close(release)

	s := <-result
	assert.Equal(t, HealthUnavailable, s.State)
	assert.Equal(t, "connection reset by peer", s.Error)
	assert.Len(t, sink.received(), 1)

	clock.Advance(DefaultHealthInterval)
	assert.Equal(t, HealthAvailable, hc.Check(context.Background()).State)
	assert.Len(t, sink.received(), 2)
}

func TestCheckAPIKeySent(t *testing.T) {
	tests := []struct {
		name   string
		apiKey string
		want   string
	}{
		{"set", testAPIKey, testAPIKey},
		{"unset", "", "(absent)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
			hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), APIKey: tt.apiKey})

			hc.Check(context.Background())
			assert.Equal(t, []string{tt.want}, ccr.receivedAPIKeys())
		})
	}
}

func TestCheckAPIKeyRedacted(t *testing.T) {
	// A server that echoes the key back, into the status or the body of
	// an error, must not get it into the results.
	echo := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			respondJSON(code, `{"status":"bad key `+r.Header.Get("x-api-key")+`"}`)(w, r)
		}
	}
	tests := []struct {
		name    string
		respond http.HandlerFunc
	}{
		{"status echo", echo(200)},
		{"error echo", echo(401)},
		{"refused", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := closedCCRURL(t)
			if tt.respond != nil {
				url = newFakeCCR(t, tt.respond).URL()
			}
			sink := &healthSink{}
			hc := mustHealthChecker(t, HealthConfig{URL: url, APIKey: testAPIKey, Sink: sink})

			s := hc.Check(context.Background())
			require.Equal(t, HealthUnavailable, s.State)
			data, err := json.Marshal(s)
			require.NoError(t, err)
			assert.NotContains(t, string(data), testAPIKey)
			for _, a := range sink.received() {
				assert.NotContains(t, a.Message, testAPIKey)
			}

			hc.ReportUnavailable(errors.New("CCR rejected x-api-key " + testAPIKey))
			assert.NotContains(t, hc.Status().Error, testAPIKey)
			assert.Contains(t, hc.Status().Error, "[REDACTED]")
		})
	}
}

func TestCheckRequestsOnlyHealth(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	clock := NewManualClock(base)
	responses := []http.HandlerFunc{
		respondJSON(200, bodyCCR1OK),
		func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/api/config", http.StatusFound) },
		func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/providers", http.StatusPermanentRedirect)
		},
		respondJSON(500, ""),
		respondJSON(200, bodyCCR3Running),
	}
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Clock: clock, APIKey: testAPIKey})
	for _, respond := range responses {
		ccr.setResponse(respond)
		hc.Check(context.Background())
		hc.ReportUnavailable(errors.New("connection reset by peer"))
		clock.Advance(DefaultHealthInterval)
	}

	paths := ccr.requestedPaths()
	require.Len(t, paths, len(responses))
	for _, p := range paths {
		assert.Equal(t, "/health", p)
	}
}

func TestCheckBaseURLWithPath(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(200, bodyCCR1OK))
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL() + "/ccr/"})

	s := hc.Check(context.Background())
	assert.Equal(t, ccr.URL()+"/ccr", s.URL)
	assert.Equal(t, []string{"/ccr/health"}, ccr.requestedPaths())
}

func TestCheckUserinfoNotShown(t *testing.T) {
	ccr := newFakeCCR(t, respondJSON(503, ""))
	url := strings.Replace(ccr.URL(), "http://", "http://user:secret@", 1)
	hc := mustHealthChecker(t, HealthConfig{URL: url})

	s := hc.Check(context.Background())
	assert.Equal(t, ccr.URL(), s.URL)
	assert.NotContains(t, s.Error, "secret")
	assert.NotContains(t, s.Error, "user")
}

func TestCheckGivenClientNotChanged(t *testing.T) {
	ccr := newFakeCCR(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/api/config", http.StatusFound)
	})
	client := &http.Client{}
	hc := mustHealthChecker(t, HealthConfig{URL: ccr.URL(), Client: client})

	s := hc.Check(context.Background())
	assert.Equal(t, HealthUnavailable, s.State)
	assert.Nil(t, client.CheckRedirect)
	assert.Equal(t, []string{"/health"}, ccr.requestedPaths())
}

func TestCheckSinkPanicRecovered(t *testing.T) {
	clock := NewManualClock(base)
	calls := 0
	sink := AlertFunc(func(Alert) {
		calls++
		panic("sink failed")
	})
	hc := mustHealthChecker(t, HealthConfig{URL: closedCCRURL(t), Clock: clock, Sink: sink})

	s := hc.Check(context.Background())
	assert.Equal(t, HealthUnavailable, s.State)
	assert.NotPanics(t, func() { hc.ReportUnavailable(nil) })
	clock.Advance(DefaultHealthInterval)
	assert.Equal(t, HealthUnavailable, hc.Check(context.Background()).State)
	assert.Equal(t, 1, calls)
}

func TestCheckSinkCallsBack(t *testing.T) {
	var seen HealthStatus
	var hc *HealthChecker
	sink := AlertFunc(func(Alert) {
		seen = hc.Status()
		hc.ReportUnavailable(errors.New("from the sink"))
	})
	hc = mustHealthChecker(t, HealthConfig{URL: closedCCRURL(t), Sink: sink})

	done := make(chan struct{})
	go func() {
		defer close(done)
		hc.Check(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Check did not return: the sink call back deadlocked")
	}
	assert.Equal(t, HealthUnavailable, seen.State)
	assert.Equal(t, "from the sink", hc.Status().Error)
}

func TestClip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "ok", 64, "ok"},
		{"ascii cut", "abcdef", 3, "abc"},
		{"rune kept whole", "aé", 2, "a"},
		{"rune fits", "aé", 3, "aé"},
		{"invalid utf8", "a\xffb", 64, "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, clip(tt.in, tt.n))
		})
	}
}
