package redisstore

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/ccrusage/ccrusage"
)

// totalsWindow is how far before now a day may have ended and still have
// its totals returned by a flush. A Tracker keeps each provider's current
// and previous day, and the previous day ended at most 25 hours ago, the
// length of a day that leaves daylight saving time.
const totalsWindow = 26 * time.Hour

// taskKey identifies the counts of one provider and task on one day.
type taskKey struct {
	provider, task string
	date           ccrusage.Date
}

// change is a buffered change of one taskKey's counts, or the cumulative
// changes this Store applied.
type change struct {
	dayEnd time.Time
	counts ccrusage.Counts
}

// claim is an alert waiting for its claim.
type claim struct {
	alert ccrusage.Alert
	send  func(ccrusage.Alert)
	// sentUnclaimed reports whether the alert was sent without a claim
	// during an outage. The next flush that succeeds claims it all the same,
	// so that a later process does not send it again.
	sentUnclaimed bool
}

// batch is the count changes and alert claims that one flush applies under
// one flush id. A batch whose flush failed is retried unchanged, id included,
// until Redis acknowledges it, so that the script can tell a retry from a
// new batch.
type batch struct {
	id      string // empty for a batch that only reads totals
	changes map[taskKey]change
	claims  []*claim
}

// dayChanges are a batch's changes of one provider's day.
type dayChanges struct {
	provider string
	date     ccrusage.Date
	dayEnd   time.Time
	tasks    map[string]ccrusage.Counts
}

// scriptArgs returns the KEYS and ARGV of flushScript for b. previousKey is
// the flush id key of the last acknowledged batch, or empty.
func scriptArgs(ks keyspace, grace time.Duration, b *batch, previousKey string, now time.Time) ([]string, []any) {
	flushKey := ks.flush(b.id)
	if previousKey == "" {
		previousKey = flushKey
	}
	days := groupByDay(b.changes)

	keys := make([]string, 0, 3+len(days)+len(b.claims))
	keys = append(keys, ks.days, flushKey, previousKey)
	args := make([]any, 0, 7+5*len(b.changes)+len(b.claims))
	args = append(args,
		millis(now), strconv.FormatInt(grace.Milliseconds(), 10), strconv.FormatInt(totalsWindow.Milliseconds(), 10),
		b.id, ks.countsPrefix, len(days), len(b.claims))

	for _, d := range days {
		keys = append(keys, ks.counts(d.provider, d.date))
		tasks := make([]string, 0, len(d.tasks))
		for task := range d.tasks {
			tasks = append(tasks, task)
		}
		sort.Strings(tasks)
		var fields []any
		for _, task := range tasks {
			fields = appendFields(fields, task, d.tasks[task])
		}
		args = append(args, dayMember(d.provider, d.date), millis(d.dayEnd), millis(d.dayEnd.Add(grace)), len(fields)/2)
		args = append(args, fields...)
	}

	for _, c := range b.claims {
		keys = append(keys, ks.claim(c.alert))
		args = append(args, millis(latestDayEnd(c.alert.Date).Add(grace)))
	}
	return keys, args
}

// groupByDay groups changes by provider and day, sorted so that a batch
// always sends the same arguments.
func groupByDay(changes map[taskKey]change) []*dayChanges {
	type dayKey struct {
		provider string
		date     ccrusage.Date
	}
	byDay := map[dayKey]*dayChanges{}
	for k, c := range changes {
		dk := dayKey{k.provider, k.date}
		d := byDay[dk]
		if d == nil {
			d = &dayChanges{provider: k.provider, date: k.date, dayEnd: c.dayEnd, tasks: map[string]ccrusage.Counts{}}
			byDay[dk] = d
		}
		d.tasks[k.task] = c.counts
	}

	days := make([]*dayChanges, 0, len(byDay))
	for _, d := range byDay {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool {
		if days[i].provider != days[j].provider {
			return days[i].provider < days[j].provider
		}
		return days[i].date.Before(days[j].date)
	})
	return days
}

func millis(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// flushReply is the decoded reply of flushScript.
type flushReply struct {
	// applied reports whether this run applied the batch's changes; false
	// for a retry of a batch that an earlier run applied.
	applied bool
	// claims reports, for each claim of the batch, whether it was won.
	claims []bool
	// totals are the counts of every process, for the current days.
	totals map[taskKey]ccrusage.Counts
}

// parseReply decodes the reply of flushScript for a batch of nclaims claims.
// Members and fields it cannot read, which no Store writes, are skipped:
// failing on them would make every later flush fail too.
func parseReply(v any, nclaims int) (flushReply, error) {
	parts, ok := v.([]any)
	if !ok || len(parts) != 3 {
		return flushReply{}, fmt.Errorf("ccrusage: invalid reply from the flush script: %v", v)
	}
	applied, ok1 := parts[0].(int64)
	claims, ok2 := parts[1].([]any)
	totals, ok3 := parts[2].([]any)
	if !ok1 || !ok2 || !ok3 || len(claims) != nclaims || len(totals)%2 != 0 {
		return flushReply{}, fmt.Errorf("ccrusage: invalid reply from the flush script for %d claims: %v", nclaims, v)
	}

	r := flushReply{applied: applied == 1, claims: make([]bool, nclaims), totals: map[taskKey]ccrusage.Counts{}}
	for i, c := range claims {
		won, _ := c.(int64)
		r.claims[i] = won == 1
	}
	for i := 0; i < len(totals); i += 2 {
		member, _ := totals[i].(string)
		fields, _ := totals[i+1].([]any)
		provider, date, ok := parseDayMember(member)
		if !ok {
			continue
		}
		tasks := map[string]ccrusage.Counts{}
		for j := 0; j+1 < len(fields); j += 2 {
			field, _ := fields[j].(string)
			value, _ := fields[j+1].(string)
			setField(tasks, field, value)
		}
		for task, c := range tasks {
			r.totals[taskKey{provider: provider, task: task, date: date}] = c
		}
	}
	return r, nil
}
