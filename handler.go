package ccrusage

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Metrics is the body that the handler of NewMetricsHandler serves. The
// fields of the embedded Snapshot appear as top-level JSON fields.
type Metrics struct {
	Snapshot
	// CCR is claude-code-router's availability, or null when the handler
	// has no HealthChecker.
	CCR *HealthStatus `json:"ccr"`
}

// NewMetricsHandler returns an http.Handler that serves tr's Snapshot and
// hc's health check as one JSON Metrics object. It is meant to be mounted
// at /ccr/metrics:
//
//	mux.Handle("/ccr/metrics", ccrusage.NewMetricsHandler(tr, hc))
//
// A nil hc serves "ccr": null. The handler serves GET and HEAD, each with
// Content-Type application/json and Cache-Control no-store, and rejects
// any other method with 405 Method Not Allowed. It calls hc.Check with the
// request's context, so a request waits at most for one probe
// (HealthConfig.Timeout) and the alert that probe sends, and it returns
// earlier when the client goes away. NewMetricsHandler panics if tr is
// nil.
func NewMetricsHandler(tr *Tracker, hc *HealthChecker) http.Handler {
	if tr == nil {
		panic("ccrusage: NewMetricsHandler called with a nil *Tracker")
	}
	return &metricsHandler{tracker: tr, health: hc}
}

type metricsHandler struct {
	tracker *Tracker
	health  *HealthChecker
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}

	// The health check comes first because it may wait for a probe, and
	// the snapshot taken after it is then the fresher.
	var m Metrics
	if h.health != nil {
		s := h.health.Check(r.Context())
		m.CCR = &s
	}
	m.Snapshot = h.tracker.Snapshot()

	// Encoding into a buffer first means a failure can still become a
	// proper error response, and HEAD gets the right Content-Length. A
	// Snapshot encodes unlimited ratios as null and counts as integers, so
	// the only failure left is a time outside the years 0 to 9999, which
	// time.Time.MarshalJSON rejects and only a Clock set that far can give.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		http.Error(w, "ccrusage: encoding metrics failed: "+err.Error(), http.StatusInternalServerError)
		return
	}

	header := w.Header()
	header.Set("Content-Type", "application/json")
	header.Set("Cache-Control", "no-store")
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		// A write error means the client went away, so there is no one
		// left to tell.
		_, _ = w.Write(body.Bytes())
	}
}
