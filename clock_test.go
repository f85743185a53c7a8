package ccrusage

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestManualClock(t *testing.T) {
	clock := NewManualClock(base)
	assert.Equal(t, base, clock.Now())

	assert.Equal(t, base.Add(time.Hour), clock.Advance(time.Hour))
	assert.Equal(t, base.Add(30*time.Minute), clock.Advance(-30*time.Minute))

	later := base.AddDate(1, 0, 0)
	clock.Set(later)
	assert.Equal(t, later, clock.Now())

	var zero ManualClock
	assert.True(t, zero.Now().IsZero())
}

func TestNilClockIsReal(t *testing.T) {
	tr, err := New(Config{})
	require.NoError(t, err)
	assert.IsType(t, realClock{}, tr.clock)
}

// Only the real clock may read the system time, so that every result is
// reproducible with a ManualClock.
func TestOnlyRealClockReadsTime(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		f, err := parser.ParseFile(fset, name, src, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if ok && pkg.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until" || sel.Sel.Name == "Local") {
				pos := fset.Position(sel.Pos())
				if name != "clock.go" {
					t.Errorf("%s:%d uses time.%s", pos.Filename, pos.Line, sel.Sel.Name)
				}
			}
			return true
		})
	}
}

func TestNewStartsNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 10; i++ {
		_, err := New(Config{Providers: []ProviderConfig{{Name: ProviderGemini, Limits: Limits{Requests: 1}}}})
		require.NoError(t, err)
	}
	assert.Equal(t, before, runtime.NumGoroutine())
}
