package ccrusage

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEvaluateQuotaBoundaries(t *testing.T) {
	tests := []struct {
		name        string
		used, limit int64
		want        Level
		percent     string
	}{
		{"zero", 0, 10_000, LevelInfo, "0.0%"},
		{"one below warning", 7_999, 10_000, LevelInfo, "79.9%"},
		{"at warning", 8_000, 10_000, LevelWarning, "80.0%"},
		{"one below critical", 9_499, 10_000, LevelWarning, "94.9%"},
		{"at critical", 9_500, 10_000, LevelCritical, "95.0%"},
		{"over limit", 15_000, 10_000, LevelCritical, "150.0%"},
		{"warning needs rounding up", 4, 5, LevelWarning, "80.0%"},
		{"just below on odd limit", 79_999_999, 100_000_001, LevelInfo, "79.9%"},
		{"billions at warning", 7_200_000_000_000_000_000, 9_000_000_000_000_000_000, LevelWarning, "80.0%"},
		{"billions one below", 7_199_999_999_999_999_999, 9_000_000_000_000_000_000, LevelInfo, "79.9%"},
		{"billions at critical", 8_550_000_000_000_000_000, 9_000_000_000_000_000_000, LevelCritical, "95.0%"},
		{"billions one below critical", 8_549_999_999_999_999_999, 9_000_000_000_000_000_000, LevelWarning, "94.9%"},
		{"max usage limit one", math.MaxInt64, 1, LevelCritical, ">1e18%"},
		{"negative usage", -5, 100, LevelInfo, "0.0%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := EvaluateQuota(tt.used, tt.limit, Thresholds{})
			assert.Equal(t, tt.want, q.Level)
			assert.Equal(t, tt.percent, q.Percent())
		})
	}
}

// Rounding of the float ratio must never place it on the other side of a
// threshold from the level.
func TestEvaluateQuotaRatioAgreesWithLevel(t *testing.T) {
	th := Thresholds{}.withDefaults()
	for _, limit := range []int64{3, 7, 100, 10_000, 1 << 53, 9_000_000_000_000_000_000, math.MaxInt64} {
		warn := countAt(limit, 800_000)
		crit := countAt(limit, 950_000)
		for _, used := range []int64{warn - 1, warn, warn + 1, crit - 1, crit, crit + 1} {
			q := EvaluateQuota(used, limit, Thresholds{})
			switch q.Level {
			case LevelInfo:
				assert.Less(t, q.Ratio, th.Warning, "used %d of %d", used, limit)
			case LevelWarning:
				assert.GreaterOrEqual(t, q.Ratio, th.Warning, "used %d of %d", used, limit)
				assert.Less(t, q.Ratio, th.Critical, "used %d of %d", used, limit)
			case LevelCritical:
				assert.GreaterOrEqual(t, q.Ratio, th.Critical, "used %d of %d", used, limit)
			}
		}
	}
}

func TestEvaluateQuotaUnlimited(t *testing.T) {
	for _, limit := range []int64{0, -1} {
		q := EvaluateQuota(1_000_000, limit, Thresholds{})
		assert.False(t, q.Limited())
		assert.Equal(t, LevelInfo, q.Level)
		assert.Zero(t, q.Ratio)
		assert.Equal(t, int64(math.MaxInt64), q.Remaining())
		assert.Equal(t, "unlimited", q.Percent())
	}
}

func TestEvaluateQuotaCustomThresholds(t *testing.T) {
	th := Thresholds{Warning: 0.5, Critical: 0.75}
	assert.Equal(t, LevelInfo, EvaluateQuota(49, 100, th).Level)
	assert.Equal(t, LevelWarning, EvaluateQuota(50, 100, th).Level)
	assert.Equal(t, LevelCritical, EvaluateQuota(75, 100, th).Level)
}

func TestEvaluateQuotaInvalidThresholdsUseDefaults(t *testing.T) {
	q := EvaluateQuota(80, 100, Thresholds{Warning: math.NaN()})
	assert.Equal(t, LevelWarning, q.Level)
}

func TestQuotaRemaining(t *testing.T) {
	assert.Equal(t, int64(20), EvaluateQuota(80, 100, Thresholds{}).Remaining())
	assert.Equal(t, int64(0), EvaluateQuota(150, 100, Thresholds{}).Remaining())
}

func TestThresholdsValidate(t *testing.T) {
	tests := []struct {
		name    string
		th      Thresholds
		wantErr string
	}{
		{"defaults", Thresholds{}, ""},
		{"custom", Thresholds{Warning: 0.5, Critical: 0.9}, ""},
		{"critical one", Thresholds{Warning: 0.9, Critical: 1}, ""},
		{"warning NaN", Thresholds{Warning: math.NaN()}, "Warning NaN"},
		{"critical NaN", Thresholds{Critical: math.NaN()}, "Critical NaN"},
		{"negative", Thresholds{Warning: -0.1}, "Warning -0.1"},
		{"above one", Thresholds{Critical: 1.5}, "Critical 1.5"},
		{"infinite", Thresholds{Critical: math.Inf(1)}, "Critical +Inf"},
		{"warning equals critical", Thresholds{Warning: 0.9, Critical: 0.9}, "Warning 0.9 must be below Critical 0.9"},
		{"warning above default critical", Thresholds{Warning: 0.96}, "Warning 0.96 must be below Critical 0.95"},
		{"below a millionth", Thresholds{Warning: 1e-9}, "Warning 1e-09"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.th.Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestLevelText(t *testing.T) {
	for _, l := range []Level{LevelInfo, LevelWarning, LevelCritical} {
		text, err := l.MarshalText()
		require.NoError(t, err)
		var back Level
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, l, back)
	}
	assert.Equal(t, "Level(7)", Level(7).String())
	_, err := Level(7).MarshalText()
	assert.Error(t, err)
	var l Level
	assert.ErrorContains(t, l.UnmarshalText([]byte("warn")), `"warn"`)
}

func TestLevelJSON(t *testing.T) {
	b, err := json.Marshal(map[string]Level{"level": LevelCritical})
	require.NoError(t, err)
	assert.JSONEq(t, `{"level":"CRITICAL"}`, string(b))
}

func TestCountAt(t *testing.T) {
	assert.Equal(t, int64(80), countAt(100, 800_000))
	assert.Equal(t, int64(4), countAt(5, 800_000))
	assert.Equal(t, int64(3), countAt(3, 800_000)) // 2.4 rounds up
	assert.Equal(t, int64(math.MaxInt64), countAt(0, 800_000))
	assert.Equal(t, int64(math.MaxInt64), countAt(math.MaxInt64, ppmScale))
}
