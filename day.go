package ccrusage

import (
	"fmt"
	"time"
)

// Date is a calendar day, without a zone: the day a provider's usage
// belongs to in the provider's own time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the calendar day of t in loc. A nil loc means UTC.
func DateOf(t time.Time, loc *time.Location) Date {
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := t.In(loc).Date()
	return Date{Year: y, Month: m, Day: d}
}

// String formats the date as 2006-01-02.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// MarshalText encodes the date as 2006-01-02.
func (d Date) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// UnmarshalText decodes a date written as 2006-01-02.
func (d *Date) UnmarshalText(text []byte) error {
	t, err := time.Parse(time.DateOnly, string(text))
	if err != nil {
		return fmt.Errorf("ccrusage: invalid date %q: want YYYY-MM-DD", text)
	}
	*d = Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}
	return nil
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// AddDays returns the date n calendar days after d (before it for negative
// n). The arithmetic is on the calendar, so it is unaffected by time zones
// and daylight saving time.
func (d Date) AddDays(n int) Date {
	t := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC)
	return DateOf(t, time.UTC)
}

// Start returns the first instant of d in loc, usually midnight. In a zone
// whose clocks skip midnight it is the first instant that exists, and in a
// zone that skips all of d it is the first instant of the next day. A nil
// loc means UTC.
func (d Date) Start(loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
	if DateOf(t, loc) == d && DateOf(t.Add(-time.Second), loc).Before(d) {
		return t
	}

	// time.Date chose an instant that is not the first of d. Midnight may
	// not exist (clocks moved forward at 00:00, or past the whole day as in
	// Pacific/Apia on 2011-12-30), and time.Date then returns an instant on
	// the previous day. Or midnight may exist twice (clocks moved back at
	// 01:00, as in Asia/Amman until 2021), and time.Date may return the
	// second one. Search for the first second whose date is d or later.
	// Offsets in the time zone database stay within 16 hours of UTC
	// (Asia/Manila's -15:56:08 until 1844 is the widest), so that second
	// is less than two days from t. Offsets are whole seconds, so a second
	// is fine enough.
	lo, hi := t.Add(-48*time.Hour).Unix(), t.Add(48*time.Hour).Unix()
	for lo < hi {
		mid := lo + (hi-lo)/2
		if DateOf(time.Unix(mid, 0), loc).Before(d) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return time.Unix(lo, 0).In(loc)
}
