// Package prometheus contains only a benchmark baseline: counting requests and
// tokens with Prometheus CounterVecs, measured in the same run as
// ccrusage's Tracker.Record and the floor. It lives in its own module so
// that ccrusage itself imports only the standard library.
package prometheus
