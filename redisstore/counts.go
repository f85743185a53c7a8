package redisstore

import (
	"strconv"
	"strings"

	"github.com/ccrusage/ccrusage"
)

// kinds are the counts kept in Redis, by the hash field suffix that names
// them: the JSON names of the ccrusage.Counts fields. Counts.Tokens is not
// kept because the Tracker derives it from the token kinds.
var kinds = []struct {
	name  string
	field func(c *ccrusage.Counts) *int64
}{
	{"requests", func(c *ccrusage.Counts) *int64 { return &c.Requests }},
	{"failures", func(c *ccrusage.Counts) *int64 { return &c.Failures }},
	{"fallbacks", func(c *ccrusage.Counts) *int64 { return &c.Fallbacks }},
	{"unknown_usage", func(c *ccrusage.Counts) *int64 { return &c.UnknownUsage }},
	{"input_tokens", func(c *ccrusage.Counts) *int64 { return &c.InputTokens }},
	{"output_tokens", func(c *ccrusage.Counts) *int64 { return &c.OutputTokens }},
	{"cache_read_tokens", func(c *ccrusage.Counts) *int64 { return &c.CacheReadTokens }},
	{"cache_creation_tokens", func(c *ccrusage.Counts) *int64 { return &c.CacheCreationTokens }},
	{"estimated_tokens", func(c *ccrusage.Counts) *int64 { return &c.EstimatedTokens }},
}

// kindIndex maps a field suffix to its index in kinds.
var kindIndex = func() map[string]int {
	m := make(map[string]int, len(kinds))
	for i, k := range kinds {
		m[k.name] = i
	}
	return m
}()

// addCounts returns a+b over the kinds kept in Redis.
func addCounts(a, b ccrusage.Counts) ccrusage.Counts {
	for _, k := range kinds {
		*k.field(&a) += *k.field(&b)
	}
	return a
}

// othersCounts returns total-mine over the kinds kept in Redis, each at
// least zero. A kind comes out negative only when Redis lost counts that
// this Store applied, as after a restart without persistence.
// NOTE: the Store does not apply its earlier changes again after such a
// loss, so the other processes' counts read low for the rest of the day.
func othersCounts(total, mine ccrusage.Counts) ccrusage.Counts {
	var o ccrusage.Counts
	for _, k := range kinds {
		*k.field(&o) = max(*k.field(&total)-*k.field(&mine), 0)
	}
	return o
}

// isZero reports whether every kind kept in Redis is zero.
func isZero(c ccrusage.Counts) bool {
	for _, k := range kinds {
		if *k.field(&c) != 0 {
			return false
		}
	}
	return true
}

// appendFields appends the hash fields and increments of c's non-zero kinds
// for task.
func appendFields(args []any, task string, c ccrusage.Counts) []any {
	for _, k := range kinds {
		if v := *k.field(&c); v != 0 {
			args = append(args, task+":"+k.name, strconv.FormatInt(v, 10))
		}
	}
	return args
}

// setField stores value in counts under the task and kind that a hash
// field names. The task is everything before the last ':', so task names
// may contain ':'. It reports false, and stores nothing, for a field of an
// unknown kind or a value that is not an integer.
func setField(counts map[string]ccrusage.Counts, field, value string) bool {
	i := strings.LastIndexByte(field, ':')
	if i < 0 {
		return false
	}
	k, ok := kindIndex[field[i+1:]]
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return false
	}
	task := field[:i]
	c := counts[task]
	*kinds[k].field(&c) = v
	counts[task] = c
	return true
}
