package ccrusage

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// Level is a provider's standing against its daily limits. The zero value
// is LevelInfo, the ordinary state.
type Level int

// Levels in increasing order of urgency.
const (
	// LevelInfo: below the warning threshold of every limit, or unlimited.
	LevelInfo Level = iota
	// LevelWarning: at or above the warning threshold of some limit.
	LevelWarning
	// LevelCritical: at or above the critical threshold of some limit.
	LevelCritical
)

// String returns "INFO", "WARNING" or "CRITICAL", and "Level(N)" for any
// other value.
func (l Level) String() string {
	switch l {
	case LevelInfo:
		return "INFO"
	case LevelWarning:
		return "WARNING"
	case LevelCritical:
		return "CRITICAL"
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// MarshalText encodes the level as its String form.
func (l Level) MarshalText() ([]byte, error) {
	if l < LevelInfo || l > LevelCritical {
		return nil, fmt.Errorf("ccrusage: invalid level %d", int(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText decodes "INFO", "WARNING" or "CRITICAL".
func (l *Level) UnmarshalText(text []byte) error {
	switch string(text) {
	case "INFO":
		*l = LevelInfo
	case "WARNING":
		*l = LevelWarning
	case "CRITICAL":
		*l = LevelCritical
	default:
		return fmt.Errorf("ccrusage: invalid level %q: want INFO, WARNING or CRITICAL", text)
	}
	return nil
}

// Thresholds are the fractions of a limit at which a provider turns WARNING
// and CRITICAL. A zero field means its default, DefaultWarningThreshold or
// DefaultCriticalThreshold. Each must lie in (0, 1] and Warning must be below
// Critical. Comparisons are exact integer arithmetic on the thresholds
// rounded to millionths, so 0.8 means exactly 80 %.
type Thresholds struct {
	Warning  float64 `json:"warning"`
	Critical float64 `json:"critical"`
}

// ppmScale is the denominator of thresholds in integer form: parts per
// million.
const ppmScale = 1_000_000

// thresholdsPPM holds validated thresholds in parts per million.
type thresholdsPPM struct {
	warning, critical uint64
}

var defaultThresholdsPPM = thresholdsPPM{warning: 800_000, critical: 950_000}

// Validate returns an error naming the first invalid field: NaN, negative,
// above 1, or a Warning not below Critical once zero fields take their
// defaults.
func (th Thresholds) Validate() error {
	_, err := th.ppm()
	return err
}

// withDefaults returns th with zero fields replaced by the defaults.
func (th Thresholds) withDefaults() Thresholds {
	if th.Warning == 0 {
		th.Warning = DefaultWarningThreshold
	}
	if th.Critical == 0 {
		th.Critical = DefaultCriticalThreshold
	}
	return th
}

func (th Thresholds) ppm() (thresholdsPPM, error) {
	th = th.withDefaults()
	for _, f := range []struct {
		name  string
		value float64
	}{{"Warning", th.Warning}, {"Critical", th.Critical}} {
		if math.IsNaN(f.value) || f.value <= 0 || f.value > 1 {
			return thresholdsPPM{}, fmt.Errorf("ccrusage: invalid threshold %s %v: want a fraction in (0, 1], such as 0.8", f.name, f.value)
		}
	}
	p := thresholdsPPM{
		warning:  uint64(math.Round(th.Warning * ppmScale)),
		critical: uint64(math.Round(th.Critical * ppmScale)),
	}
	if p.warning == 0 {
		return thresholdsPPM{}, fmt.Errorf("ccrusage: invalid threshold Warning %v: below one millionth", th.Warning)
	}
	if p.warning >= p.critical {
		return thresholdsPPM{}, fmt.Errorf("ccrusage: invalid thresholds: Warning %v must be below Critical %v", th.Warning, th.Critical)
	}
	return p, nil
}

// Quota is one daily limit evaluated against its usage.
type Quota struct {
	// Used is the usage so far today, in the limit's unit (requests or
	// tokens). It is never negative.
	Used int64
	// Limit is the daily limit; 0 means unlimited.
	Limit int64
	// Ratio is Used/Limit, 0 when unlimited. It may exceed 1. Rounding never
	// moves it across a threshold: it is below Thresholds.Warning exactly
	// when Level is LevelInfo, and likewise for Critical.
	Ratio float64
	// Level is LevelInfo when unlimited.
	Level Level
}

// EvaluateQuota evaluates used against a daily limit: the ratio and the
// level that the thresholds give. A limit of zero or less means unlimited
// and a negative used counts as zero. Invalid thresholds are replaced by the
// defaults; New rejects them, so a Tracker never passes any. The level is
// decided in integers, so it is exact for any counts up to math.MaxInt64.
func EvaluateQuota(used, limit int64, th Thresholds) Quota {
	p, err := th.ppm()
	if err != nil {
		// Replace both forms: evaluate keeps Ratio between the float
		// thresholds, which must agree with p.
		th, p = Thresholds{}, defaultThresholdsPPM
	}
	return evaluate(used, limit, p, th.withDefaults())
}

// evaluate is EvaluateQuota on validated thresholds. th is only used to
// keep Ratio on the same side of each threshold as Level.
func evaluate(used, limit int64, p thresholdsPPM, th Thresholds) Quota {
	used = max(used, 0)
	if limit <= 0 {
		return Quota{Used: used}
	}
	q := Quota{Used: used, Limit: limit, Ratio: float64(used) / float64(limit)}
	switch {
	case reaches(used, limit, p.critical):
		q.Level = LevelCritical
	case reaches(used, limit, p.warning):
		q.Level = LevelWarning
	}

	// float64 holds 53 bits, so for counts near 2^53 and beyond the
	// division can round across a threshold that the integers did not reach
	// (or the other way). Pull the ratio back to the level's side.
	lower, upper := 0.0, math.Inf(1)
	switch q.Level {
	case LevelInfo:
		upper = th.Warning
	case LevelWarning:
		lower, upper = th.Warning, th.Critical
	case LevelCritical:
		lower = th.Critical
	}
	if q.Ratio < lower {
		q.Ratio = lower
	}
	if q.Ratio >= upper {
		q.Ratio = math.Nextafter(upper, 0)
	}
	return q
}

// reaches reports whether used/limit >= ppm/ppmScale, computed exactly in
// 128 bits. used and limit must not be negative.
func reaches(used, limit int64, ppm uint64) bool {
	lhsHi, lhsLo := bits.Mul64(uint64(used), ppmScale)
	rhsHi, rhsLo := bits.Mul64(uint64(limit), ppm)
	return lhsHi > rhsHi || (lhsHi == rhsHi && lhsLo >= rhsLo)
}

// countAt returns the smallest usage that reaches ppm/ppmScale of limit, or
// math.MaxInt64 when limit is unlimited.
func countAt(limit int64, ppm uint64) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	hi, lo := bits.Mul64(uint64(limit), ppm)
	q, r := bits.Div64(hi, lo, ppmScale) // hi < ppmScale because limit < 2^63 and ppm <= ppmScale
	if r != 0 {
		q++
	}
	return int64(q)
}

// Limited reports whether the quota has a limit.
func (q Quota) Limited() bool { return q.Limit > 0 }

// Remaining returns how much of the limit is left today: 0 once it is used
// up, and math.MaxInt64 when unlimited.
func (q Quota) Remaining() int64 {
	if q.Limit <= 0 {
		return math.MaxInt64
	}
	return max(q.Limit-q.Used, 0)
}

// Percent formats Used/Limit as a percentage with one decimal, such as
// "79.9%", or "unlimited". The digits are rounded down in integer
// arithmetic, so a quota just below a threshold never reads as the
// threshold: 7,999 of 10,000 is "79.9%", not "80.0%".
func (q Quota) Percent() string {
	if q.Limit <= 0 {
		return "unlimited"
	}
	hi, lo := bits.Mul64(uint64(q.Used), 1000)
	if hi >= uint64(q.Limit) {
		// The quotient would not fit in 64 bits: usage above 2^64/1000
		// times the limit.
		return ">1e18%"
	}
	tenths, _ := bits.Div64(hi, lo, uint64(q.Limit))
	return strconv.FormatUint(tenths/10, 10) + "." + strconv.FormatUint(tenths%10, 10) + "%"
}
