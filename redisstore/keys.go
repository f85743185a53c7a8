package redisstore

import (
	"strings"
	"time"

	"github.com/ccrusage/ccrusage"
)

// keyspace names the keys of one Prefix. Every key starts with the prefix
// in braces, a Redis Cluster hash tag, because the flush script touches all
// of them in one call and Redis Cluster runs a script only on keys of one
// slot.
//
//	{prefix}:days                          sorted set: "<provider>:<date>" scored by the day's end (Unix ms)
//	{prefix}:counts:<provider>:<date>      hash: "<task>:<kind>" to a count, such as "think:input_tokens"
//	{prefix}:flush:<instance>:<run>:<seq>  the id of the last applied flush batch of one Store
//	{prefix}:alert:<provider>:<date>:<LEVEL>  claim of one alert: the flush id that won it
//
// The date is the provider's calendar day in its own zone, as in
// ccrusage.Delta.Date, so a new day starts new keys and needs no reset.
type keyspace struct {
	days         string
	countsPrefix string
	flushPrefix  string
	alertPrefix  string
}

func newKeyspace(prefix string) keyspace {
	tag := "{" + prefix + "}"
	return keyspace{
		days:         tag + ":days",
		countsPrefix: tag + ":counts:",
		flushPrefix:  tag + ":flush:",
		alertPrefix:  tag + ":alert:",
	}
}

// dayMember returns the index member of a provider's day. The date never
// contains ':', so the member splits at its last ':' even when the provider
// name contains one.
func dayMember(provider string, date ccrusage.Date) string {
	return provider + ":" + date.String()
}

// parseDayMember splits an index member into provider and date.
func parseDayMember(member string) (provider string, date ccrusage.Date, ok bool) {
	i := strings.LastIndexByte(member, ':')
	if i < 0 {
		return "", ccrusage.Date{}, false
	}
	if err := date.UnmarshalText([]byte(member[i+1:])); err != nil {
		return "", ccrusage.Date{}, false
	}
	return member[:i], date, true
}

func (k keyspace) counts(provider string, date ccrusage.Date) string {
	return k.countsPrefix + dayMember(provider, date)
}

func (k keyspace) flush(id string) string {
	return k.flushPrefix + id
}

func (k keyspace) claim(a ccrusage.Alert) string {
	return k.alertPrefix + dayMember(a.Provider, a.Date) + ":" + a.Level.String()
}

// latestDayEnd returns an instant at or after the end of date in every time
// zone: midnight after date in UTC plus 12 hours, because no zone in use is
// further west than UTC-12. A claim needs it because an Alert carries its
// date but not its provider's zone.
func latestDayEnd(date ccrusage.Date) time.Time {
	return date.AddDays(1).Start(time.UTC).Add(12 * time.Hour)
}
