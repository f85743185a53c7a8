package ccrusage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults of HealthConfig.
const (
	DefaultHealthTimeout  = time.Second
	DefaultHealthInterval = 5 * time.Second
)

// Bounds on what a probe reads and stores. CCR 1.x and 2.x send a /health
// body of about 55 bytes, so a body past 64 KiB comes from some other
// server.
const (
	maxHealthBody      = 64 << 10 // bytes of the /health response body
	maxCCRStatusLength = 64       // bytes of HealthStatus.CCRStatus
	maxErrorLength     = 512      // bytes of HealthStatus.Error
)

// HealthState is claude-code-router's availability as a HealthChecker last
// determined it.
type HealthState string

// Health states.
const (
	// HealthUnknown is the state before the first probe.
	HealthUnknown HealthState = "unknown"
	// HealthAvailable means the last probe got a 2xx response whose JSON
	// status is "ok" (CCR 1.x and 2.x) or "running" (CCR 3.x).
	HealthAvailable HealthState = "available"
	// HealthUnavailable means the last probe failed, or the caller reported
	// a failed request through HealthChecker.ReportUnavailable.
	HealthUnavailable HealthState = "unavailable"
)

// HealthStatus is the result of a health check, ready for encoding/json.
type HealthStatus struct {
	// State is the availability.
	State HealthState `json:"state"`
	// CCRStatus is the "status" string of the last /health response body,
	// such as "ok" or "running", cut to 64 bytes. It is empty when no
	// response carried one.
	CCRStatus string `json:"ccr_status"`
	// Error describes why CCR is unavailable, such as
	// "GET http://127.0.0.1:3456/health: timed out after 1s". It is empty
	// when State is not HealthUnavailable, and never contains the API key.
	Error string `json:"error"`
	// CheckedAt is the Clock reading when State was last set, by a probe or
	// by ReportUnavailable. It is the zero time, encoded as null, before
	// the first.
	CheckedAt time.Time `json:"checked_at"`
	// URL is the base URL of CCR without userinfo.
	URL string `json:"url"`
}

// MarshalJSON encodes s with checked_at null when CheckedAt is zero.
func (s HealthStatus) MarshalJSON() ([]byte, error) {
	v := struct {
		State     HealthState `json:"state"`
		CCRStatus string      `json:"ccr_status"`
		Error     string      `json:"error"`
		CheckedAt *time.Time  `json:"checked_at"`
		URL       string      `json:"url"`
	}{State: s.State, CCRStatus: s.CCRStatus, Error: s.Error, URL: s.URL}
	if !s.CheckedAt.IsZero() {
		v.CheckedAt = &s.CheckedAt
	}
	return json.Marshal(v)
}

// HealthConfig configures a HealthChecker. Every field but URL may be left
// zero.
type HealthConfig struct {
	// URL is the base URL of claude-code-router, such as
	// http://127.0.0.1:3456. The checker requests only URL + "/health",
	// never another path: CCR's /api/config and /providers return provider
	// API keys in clear. Required, http or https, without query or
	// fragment.
	URL string
	// Timeout bounds each probe, from connecting to reading the body. It
	// is a real deadline, never read from Clock. Zero means
	// DefaultHealthTimeout, 1 second. Negative is invalid.
	Timeout time.Duration
	// Interval is how long a probe result is reused before Check probes
	// again, measured on Clock. Zero means DefaultHealthInterval, 5
	// seconds. Negative is invalid.
	Interval time.Duration
	// Client sends the probes. Nil means a private client that opens a new
	// connection per probe, so that no idle connection or goroutine stays
	// behind. The checker uses a copy of a given client that does not
	// follow redirects: a 3xx response counts as unavailable.
	Client *http.Client
	// APIKey, when not empty, is sent as the x-api-key header, as CCR
	// expects when its config sets APIKEY. The checker never puts it in a
	// HealthStatus, an error or an alert.
	APIKey string
	// Clock dates the results and measures their age against Interval. Nil
	// means the system clock.
	Clock Clock
	// Sink receives an AlertHealth alert on each change of availability.
	// Nil discards them.
	Sink AlertSink
}

// HealthChecker checks whether claude-code-router is available by
// requesting its /health endpoint, and caches the result for
// HealthConfig.Interval. It is separate from the Tracker, so recording never
// waits on CCR. Create one with NewHealthChecker. A HealthChecker is safe for
// concurrent use by multiple goroutines.
//
// On each change between available and unavailable, and from unknown to
// unavailable, the checker sends one Alert of Kind AlertHealth to its sink:
// LevelCritical when CCR became unavailable, LevelInfo when it recovered.
// The first result, if available, sends nothing.
type HealthChecker struct {
	client    *http.Client
	healthURL string // with userinfo, which the client sends as basic auth
	baseURL   string // without userinfo, for HealthStatus.URL
	probeName string // "GET <health URL without userinfo>", leading error texts
	apiKey    string
	timeout   time.Duration
	interval  time.Duration
	clock     Clock
	sink      AlertSink

	mu     sync.Mutex // guards status, flight and reports
	status HealthStatus
	// flight is the probe in progress, or nil. Callers of Check that find
	// the cache stale wait for it instead of starting their own.
	flight *probeFlight
	// reports counts ReportUnavailable calls, so that a probe that began
	// before a report cannot undo it.
	reports uint64
}

// probeFlight is one probe shared by every Check that waits for it.
type probeFlight struct {
	done   chan struct{} // closed when status is set
	status HealthStatus
}

// NewHealthChecker returns a HealthChecker configured by cfg. It returns an
// error naming the field and value when URL is missing, does not parse, is
// not http or https, or has a query or fragment, and when Timeout or
// Interval is negative. It sends no request and starts no goroutine.
func NewHealthChecker(cfg HealthConfig) (*HealthChecker, error) {
	healthURL, baseURL, err := parseHealthURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("ccrusage: invalid HealthConfig.Timeout %v: must not be negative (0 means %v)", cfg.Timeout, DefaultHealthTimeout)
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("ccrusage: invalid HealthConfig.Interval %v: must not be negative (0 means %v)", cfg.Interval, DefaultHealthInterval)
	}

	hc := &HealthChecker{
		client:    newHealthClient(cfg.Client),
		healthURL: healthURL.String(),
		baseURL:   baseURL,
		probeName: "GET " + withoutUserinfo(healthURL),
		apiKey:    cfg.APIKey,
		timeout:   cfg.Timeout,
		interval:  cfg.Interval,
		clock:     cfg.Clock,
		sink:      cfg.Sink,
	}
	if hc.timeout == 0 {
		hc.timeout = DefaultHealthTimeout
	}
	if hc.interval == 0 {
		hc.interval = DefaultHealthInterval
	}
	if hc.clock == nil {
		hc.clock = realClock{}
	}
	hc.status = HealthStatus{State: HealthUnknown, URL: baseURL}
	return hc, nil
}

// parseHealthURL validates the base URL of CCR and returns the URL of its
// /health endpoint and the base URL without userinfo.
func parseHealthURL(raw string) (*url.URL, string, error) {
	if raw == "" {
		return nil, "", errors.New("ccrusage: missing HealthConfig.URL: set the base URL of claude-code-router, such as http://127.0.0.1:3456")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("ccrusage: invalid HealthConfig.URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", fmt.Errorf("ccrusage: invalid HealthConfig.URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("ccrusage: invalid HealthConfig.URL %q: missing host", u.Redacted())
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, "", fmt.Errorf("ccrusage: invalid HealthConfig.URL %q: must have no query or fragment", u.Redacted())
	}

	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.JoinPath("health"), withoutUserinfo(u), nil
}

func withoutUserinfo(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// newHealthClient returns the client that sends probes: a copy of c that
// does not follow redirects, or a private client when c is nil.
func newHealthClient(c *http.Client) *http.Client {
	var hc http.Client
	if c != nil {
		hc = *c
	} else {
		hc.Transport = newProbeTransport()
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	return &hc
}

// newProbeTransport returns a transport like http.DefaultTransport that
// closes each connection after its response, so that no idle connection
// keeps goroutines alive between probes.
func newProbeTransport() *http.Transport {
	// A program may have replaced http.DefaultTransport with another
	// RoundTripper, which cannot be cloned.
	t, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		t = t.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	t.DisableKeepAlives = true
	return t
}

// Check returns CCR's availability: the cached result if it is younger
// than Interval, and otherwise the result of a new probe of /health.
// Concurrent callers share one probe, which runs on a goroutine of its
// own. That goroutine keeps the values of ctx but not its cancellation. It
// ends once the probe has ended, within Timeout, and the sink has returned
// from any alert. Callers waiting for the probe return after that alert.
// When ctx ends first, Check returns Status at once, and the probe goes on
// for later callers.
func (hc *HealthChecker) Check(ctx context.Context) HealthStatus {
	if ctx == nil {
		ctx = context.Background()
	}
	hc.mu.Lock()
	// The clock is read under the lock so that no result can be dated
	// after this reading and look as if the clock had gone back.
	now := hc.clock.Now()
	if hc.freshLocked(now) {
		s := hc.status
		hc.mu.Unlock()
		return s
	}
	f := hc.flight
	if f == nil {
		f = &probeFlight{done: make(chan struct{})}
		hc.flight = f
		go hc.runProbe(context.WithoutCancel(ctx), f, hc.reports)
	}
	hc.mu.Unlock()

	select {
	case <-f.done:
		return f.status
	case <-ctx.Done():
		return hc.Status()
	}
}

// freshLocked reports whether the stored status may be returned at now
// without a probe. A clock that moved back before CheckedAt makes it stale.
func (hc *HealthChecker) freshLocked(now time.Time) bool {
	at := hc.status.CheckedAt
	return !at.IsZero() && !now.Before(at) && now.Sub(at) < hc.interval
}

// Status returns the last known result without probing: HealthUnknown
// before the first probe.
func (hc *HealthChecker) Status() HealthStatus {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.status
}

// ReportUnavailable marks CCR unavailable at once, with err as the reason.
// A caller whose request to CCR got a refused or dropped connection calls it
// so that the metrics and alerts need not wait for the next probe. It sends
// the alert a probe would, and its result is cached like a probe's: the
// first probe after Interval can turn CCR available again. A probe already
// in flight does not override the report. A nil err is recorded as a
// failed request without detail.
func (hc *HealthChecker) ReportUnavailable(err error) {
	text := "request to claude-code-router failed"
	if err != nil {
		text = err.Error()
	}

	hc.mu.Lock()
	now := hc.clock.Now()
	next := HealthStatus{
		State:     HealthUnavailable,
		Error:     clip(hc.redact(text), maxErrorLength),
		CheckedAt: now,
		URL:       hc.baseURL,
	}
	a, send := hc.transitionLocked(next, now)
	hc.status = next
	hc.reports++
	hc.mu.Unlock()

	// Outside the lock, so the sink may call back into the checker.
	if send {
		hc.send(a)
	}
}

// runProbe probes /health, publishes the result to the waiters of f and
// the cache, and sends the alert that a change of state calls for.
// reports is the count of ReportUnavailable calls when the probe began.
func (hc *HealthChecker) runProbe(parent context.Context, f *probeFlight, reports uint64) {
	ctx, cancel := context.WithTimeout(parent, hc.timeout)
	ccrStatus, err := hc.probe(ctx)
	cancel()

	hc.mu.Lock()
	now := hc.clock.Now()
	next := HealthStatus{
		State:     HealthAvailable,
		CCRStatus: clip(hc.redact(ccrStatus), maxCCRStatusLength),
		CheckedAt: now,
		URL:       hc.baseURL,
	}
	if err != nil {
		next.State = HealthUnavailable
		next.Error = clip(hc.redact(hc.probeName+": "+err.Error()), maxErrorLength)
	}
	if hc.reports != reports && next.State == HealthAvailable {
		// A request failed while this probe was in flight, possibly after
		// the probe got its response. The report is kept until the next probe.
		next = hc.status
	}
	a, send := hc.transitionLocked(next, now)
	hc.status = next
	hc.flight = nil
	f.status = next
	hc.mu.Unlock()

	// The alert goes out before the waiters are released, so that a Check
	// that returns a change has delivered its alert. It is sent outside the
	// lock, so the sink may call back into the checker.
	if send {
		hc.send(a)
	}
	close(f.done)
}

// probe requests /health once. It returns the body's status string, and an
// error unless that status means available.
func (hc *HealthChecker) probe(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hc.healthURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	if hc.apiKey != "" {
		req.Header.Set("x-api-key", hc.apiKey)
	}

	resp, err := hc.client.Do(req)
	if err != nil {
		return "", hc.requestError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("unexpected HTTP status %s, want 2xx", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody+1))
	if err != nil {
		return "", hc.requestError(ctx, err)
	}
	if len(body) > maxHealthBody {
		return "", fmt.Errorf("response body larger than %d KiB", maxHealthBody>>10)
	}

	var v struct {
		Status *string `json:"status"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("invalid JSON response: %w", err)
	}
	if v.Status == nil {
		return "", errors.New(`response has no "status" field`)
	}
	switch *v.Status {
	case "ok", "running":
		return *v.Status, nil
	}
	// The key is removed before clipping, which could leave part of it.
	status := clip(hc.redact(*v.Status), maxCCRStatusLength)
	return status, fmt.Errorf(`status %q means not available: want "running" (CCR 3.x) or "ok" (CCR 1.x and 2.x)`, status)
}

// requestError turns an error of sending the probe or reading its body into
// a short reason. The *url.Error wrapper is dropped because its URL may carry
// userinfo.
func (hc *HealthChecker) requestError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %v", hc.timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}

// transitionLocked returns the alert for a change from the stored state to
// next, if the change calls for one.
func (hc *HealthChecker) transitionLocked(next HealthStatus, now time.Time) (Alert, bool) {
	prev := hc.status.State
	a := Alert{Kind: AlertHealth, Time: now}
	switch {
	case next.State == HealthUnavailable && prev != HealthUnavailable:
		a.Level, a.Previous = LevelCritical, LevelInfo
		a.Message = "claude-code-router is unavailable: " + next.Error
	case next.State == HealthAvailable && prev == HealthUnavailable:
		a.Level, a.Previous = LevelInfo, LevelCritical
		a.Message = "claude-code-router is available again"
	default:
		return Alert{}, false
	}
	return a, true
}

// send delivers a to the sink. A panic in the sink is recovered, so that a
// faulty sink cannot stop health checks.
func (hc *HealthChecker) send(a Alert) {
	if hc.sink == nil {
		return
	}
	defer func() {
		_ = recover()
	}()
	hc.sink.Send(a)
}

// redact replaces every occurrence of the API key in text, such as one
// that a misbehaving server echoed into its status.
func (hc *HealthChecker) redact(text string) string {
	if hc.apiKey == "" {
		return text
	}
	return strings.ReplaceAll(text, hc.apiKey, "[REDACTED]")
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence, and
// replaces invalid UTF-8.
func clip(s string, n int) string {
	if len(s) > n {
		i := n
		for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
