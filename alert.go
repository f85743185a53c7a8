package ccrusage

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// AlertKind is the subject of an Alert: a quota or claude-code-router's
// availability.
type AlertKind string

const (
	// AlertQuota is a change of a provider's level against its daily limits.
	AlertQuota AlertKind = "quota"
	// AlertHealth is a change of claude-code-router's availability, sent by
	// a HealthChecker.
	AlertHealth AlertKind = "ccr_health"
)

// Alert is one level change. A quota alert is sent on the transition, once
// per provider, level and day. A provider that climbs from INFO to WARNING
// to CRITICAL in one day sends two alerts. One that jumps straight to
// CRITICAL sends one, whose Previous is LevelInfo. A provider that falls back
// to INFO, because a new day began or its limit was raised, sends one alert
// with Level LevelInfo.
type Alert struct {
	// Kind is AlertQuota or AlertHealth.
	Kind AlertKind
	// Provider is the provider's name; empty for a health alert.
	Provider string
	// Level is the new level. For a health alert it is LevelCritical when
	// claude-code-router became unavailable and LevelInfo when it recovered.
	Level Level
	// Previous is the level last announced before this one, or LevelInfo
	// when none was: the first quota alert of a provider, and the first
	// health alert after the health checker's state was unknown.
	Previous Level
	// Requests and Tokens are the provider's daily quotas at the moment of
	// the change. They are zero in a health alert.
	Requests Quota
	Tokens   Quota
	// Ratio is the higher of Requests.Ratio and Tokens.Ratio.
	Ratio float64
	// Date is the provider's calendar day that the alert belongs to; zero in
	// a health alert.
	Date Date
	// Time is the clock reading of the Tracker or HealthChecker when the
	// change was seen.
	Time time.Time
	// Message is a one-line description for people, such as
	// "deepseek is WARNING (was INFO): requests 80.0% of 100, tokens 1295
	// (unlimited)".
	Message string
}

// AlertSink receives alerts from a Tracker and from a HealthChecker. Both
// call Send after releasing every lock, so Send may call back into them. A
// Tracker calls it on the goroutine whose call caused the level change; a
// HealthChecker on the goroutine that ran the probe or called
// ReportUnavailable. Send must be safe for concurrent use: alerts caused on
// different goroutines may arrive in a different order from the one in
// which they were decided, so use Alert.Time and Alert.Previous to order
// them.
//
// A Send that blocks holds up only the call that caused the alert; counts
// are already committed and other goroutines keep recording. A Send that
// panics is recovered: the Tracker counts the panic (Snapshot.SinkPanics),
// treats the alert as sent, delivers the remaining alerts of the same call,
// and returns normally.
type AlertSink interface {
	Send(a Alert)
}

// AlertFunc adapts a function to an AlertSink.
type AlertFunc func(a Alert)

// Send calls f(a).
func (f AlertFunc) Send(a Alert) { f(a) }

// Keys that SlogSink writes on each record. They are stable: dashboards and
// log queries may depend on them. The alert's level has its own key because
// slog already writes the record's level under "level".
const (
	SlogKeyKind         = "kind"
	SlogKeyProvider     = "provider"
	SlogKeyLevel        = "alert_level"
	SlogKeyPrevious     = "previous_level"
	SlogKeyDate         = "date"
	SlogKeyRequests     = "requests"
	SlogKeyRequestLimit = "request_limit"
	SlogKeyTokens       = "tokens"
	SlogKeyTokenLimit   = "token_limit"
	SlogKeyRatio        = "ratio"
	SlogKeyAlertTime    = "alert_time"
)

// SlogSink is an AlertSink that writes each alert to a *slog.Logger: INFO
// alerts at slog.LevelInfo, WARNING at slog.LevelWarn and CRITICAL at
// slog.LevelError. The record's message is Alert.Message and its attributes
// use the SlogKey constants; request and token attributes are left out of
// health alerts. It is safe for concurrent use if the logger's handler is,
// as slog's own handlers are.
type SlogSink struct {
	// Logger receives the records. A nil Logger means slog.Default().
	Logger *slog.Logger
}

// NewSlogSink returns a SlogSink writing to logger.
func NewSlogSink(logger *slog.Logger) *SlogSink {
	return &SlogSink{Logger: logger}
}

// Send writes a to the logger.
func (s *SlogSink) Send(a Alert) {
	logger := s.Logger
	if logger == nil {
		logger = slog.Default()
	}
	level := slog.LevelInfo
	switch {
	case a.Level >= LevelCritical:
		level = slog.LevelError
	case a.Level == LevelWarning:
		level = slog.LevelWarn
	}

	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs,
		slog.String(SlogKeyKind, string(a.Kind)),
		slog.String(SlogKeyLevel, a.Level.String()),
		slog.String(SlogKeyPrevious, a.Previous.String()),
	)
	if a.Kind != AlertHealth {
		attrs = append(attrs,
			slog.String(SlogKeyProvider, a.Provider),
			slog.String(SlogKeyDate, a.Date.String()),
			slog.Int64(SlogKeyRequests, a.Requests.Used),
			slog.Int64(SlogKeyRequestLimit, a.Requests.Limit),
			slog.Int64(SlogKeyTokens, a.Tokens.Used),
			slog.Int64(SlogKeyTokenLimit, a.Tokens.Limit),
			slog.Float64(SlogKeyRatio, a.Ratio),
		)
	}
	attrs = append(attrs, slog.Time(SlogKeyAlertTime, a.Time))
	logger.LogAttrs(context.Background(), level, a.Message, attrs...)
}

var (
	_ AlertSink = AlertFunc(nil)
	_ AlertSink = (*SlogSink)(nil)
)

// newQuotaAlert builds a quota alert and its message.
func newQuotaAlert(name string, level, previous Level, requests, tokens Quota, date Date, now time.Time) Alert {
	msg := name + " is " + level.String() + " (was " + previous.String() + "): requests " +
		quotaText(requests) + ", tokens " + quotaText(tokens)
	return Alert{
		Kind:     AlertQuota,
		Provider: name,
		Level:    level,
		Previous: previous,
		Requests: requests,
		Tokens:   tokens,
		Ratio:    max(requests.Ratio, tokens.Ratio),
		Date:     date,
		Time:     now,
		Message:  msg,
	}
}

// quotaText formats a quota as "80.0% of 100" or "12 (unlimited)".
func quotaText(q Quota) string {
	if !q.Limited() {
		return strconv.FormatInt(q.Used, 10) + " (unlimited)"
	}
	return q.Percent() + " of " + strconv.FormatInt(q.Limit, 10)
}
