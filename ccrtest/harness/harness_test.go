package harness

import (
	"errors"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// getHealth returns the status of CCR's /health, or the request's error.
func getHealth(h *Harness) (int, error) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get(h.URL() + "/health")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// processAlive reports whether a process with pid exists.
func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func TestHarnessLifecycle(t *testing.T) {
	h := Start(t, Options{})

	status, err := getHealth(h)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.True(t, strings.HasPrefix(h.URL(), "http://127.0.0.1:"), h.URL())
	assert.FileExists(t, h.ConfigPath())
	firstPID := h.PID()
	require.NotZero(t, firstPID)

	require.NoError(t, h.Stop())
	assert.Zero(t, h.PID(), "PID while stopped")
	assert.False(t, processAlive(firstPID), "CCR process gone after Stop")
	_, err = getHealth(h)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "health after Stop: %v", err)
	require.NoError(t, h.Stop(), "second Stop")

	require.NoError(t, h.Start())
	status, err = getHealth(h)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "health after Start")
	assert.Error(t, h.Start(), "Start while running")

	require.NoError(t, h.Restart())
	secondPID := h.PID()
	status, err = getHealth(h)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "health after Restart")

	dir := h.dir
	require.NoError(t, h.Close())
	require.NoError(t, h.Close(), "second Close")
	assert.False(t, processAlive(secondPID), "CCR process gone after Close")
	assert.NoDirExists(t, dir)
	assert.Error(t, h.Start(), "Start after Close")
}

func TestHarnessStartErrors(t *testing.T) {
	h := Start(t, Options{})
	require.NoError(t, h.Stop())

	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(h.Port())))
		require.NoError(t, err)
		defer l.Close()

		assert.ErrorContains(t, h.Start(), "in use")
		assert.Zero(t, h.PID())
	})

	t.Run("invalid config", func(t *testing.T) {
		config, err := os.ReadFile(h.ConfigPath())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(h.ConfigPath(), []byte("{ not json"), 0o600))
		defer func() {
			require.NoError(t, os.WriteFile(h.ConfigPath(), config, 0o600))
		}()

		err = h.Start()
		assert.ErrorContains(t, err, "exited during start-up")
		assert.ErrorContains(t, err, "config", "error carries CCR's output")
		assert.Zero(t, h.PID())
	})

	require.NoError(t, h.Start(), "Start after failed starts")
	assert.NotZero(t, h.PID())
}

func TestNewInvalidOptions(t *testing.T) {
	tests := map[string]Options{
		"dollar in key":      {APIKey: "key$HOME"},
		"negative threshold": {LongContextThreshold: -1},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			h, err := New(opts)
			assert.Error(t, err)
			assert.Nil(t, h)
		})
	}
}

func TestSkipOrFatalRequireTools(t *testing.T) {
	tests := []struct {
		name    string
		require string
		err     error
		skipped bool
		failed  bool
	}{
		{"nil error", "", nil, false, false},
		{"unavailable", "", ErrUnavailable, true, false},
		{"unavailable required", "1", ErrUnavailable, false, true},
		{"other error", "", errors.New("boom"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireToolsEnv, tt.require)
			rec := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				SkipOrFatal(rec, tt.err)
			}()
			<-done
			assert.Equal(t, tt.skipped, rec.skipped, "skipped")
			assert.Equal(t, tt.failed, rec.failed, "failed")
		})
	}
}

// recordingTB records Skip and Fatal calls instead of ending the test. Both
// end the calling goroutine, as the testing package's do.
type recordingTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(string, ...any) {
	r.skipped = true
	runtime.Goexit()
}

func (r *recordingTB) Fatal(...any) {
	r.failed = true
	runtime.Goexit()
}
