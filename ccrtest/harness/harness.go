// Package harness runs the real claude-code-router (CCR) on 127.0.0.1 in
// front of fake LLM providers, for integration tests.
//
// New installs CCR Version with npm once per process (see Install), starts
// one fake Upstream per provider with httptest, writes CCR's config.json
// under a temporary HOME and starts `node cli.js start` on a free port.
// The config routes CCR's tasks to the fakes (RouteDefault and the other
// Route constants) and names the remaining models (ModelAnthropic,
// ModelBroken and so on). Each fake counts the requests it receives, so a
// test can tell which provider CCR reached, and reports token usage that
// the test can set.
//
// Start does the same for a test and closes the harness in its Cleanup. It
// skips the test when node, npm or the npm registry is unavailable, and
// fails it instead when the environment variable CCRUSAGE_REQUIRE_TOOLS is
// "1".
//
// Nothing here listens on or connects to an address other than 127.0.0.1:
// the fakes and CCR bind it, and CCR's environment has no proxy variables.
package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireToolsEnv is the environment variable that, set to "1", makes a
// missing tool fail the test instead of skipping it. CI sets it.
const RequireToolsEnv = "CCRUSAGE_REQUIRE_TOOLS"

// DefaultStartTimeout bounds CCR's start-up unless Options sets another.
// CCR 2.0.0 returns 200 on /health 1.5 to 4 seconds after launch on a
// 2-core machine.
const DefaultStartTimeout = 30 * time.Second

// Options configures a Harness. The zero value is valid.
type Options struct {
	// APIKey is the key CCR requires from clients, as x-api-key or a
	// bearer token. Empty means DefaultAPIKey. CCR replaces $NAME in config
	// strings with environment variables, so the key must not contain '$'.
	APIKey string
	// LongContextThreshold is the Router's longContextThreshold in tokens.
	// Zero means DefaultLongContextThreshold.
	LongContextThreshold int
	// Fallback is CCR's fallback map: for a scenario (default, background,
	// think, longContext, webSearch), the "provider,model" entries CCR tries
	// in order when the routed provider responds with an HTTP error. Nil
	// means no fallback.
	Fallback map[string][]string
	// StartTimeout bounds each start of CCR. Zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
}

// Harness is a running CCR in front of fake providers. Its methods are
// safe for concurrent use.
type Harness struct {
	// DeepSeek serves RouteDefault and RouteThink.
	DeepSeek *Upstream
	// Gemini serves RouteBackground and RouteLongContext.
	Gemini *Upstream
	// OpenRouter serves RouteWebSearch and ModelOpenRouter.
	OpenRouter *Upstream
	// Anthropic serves ModelAnthropic in the Anthropic format.
	Anthropic *Upstream
	// Broken serves ModelBroken and responds to every request with 500.
	Broken *Upstream
	// RateLimited serves ModelRateLimited and responds to every request
	// with 429.
	RateLimited *Upstream
	// DeadPort is the 127.0.0.1 port of ModelDead, where nothing listens.
	DeadPort int

	apiKey               string
	longContextThreshold int
	fallback             map[string][]string
	startTimeout         time.Duration
	cli                  string // path of CCR's dist/cli.js
	dir                  string // temporary root: home/, tmp/ and ccr.log
	port                 int

	mu     sync.Mutex // guards proc and closed
	proc   *process   // nil while CCR is stopped
	closed bool
}

// New starts a harness: it installs CCR if needed, starts the fakes,
// writes the config and starts CCR. The error wraps ErrUnavailable when a
// tool is missing. Call Close when done.
func New(opts Options) (*Harness, error) {
	h := &Harness{
		apiKey:               opts.APIKey,
		longContextThreshold: opts.LongContextThreshold,
		fallback:             opts.Fallback,
		startTimeout:         opts.StartTimeout,
	}
	if h.apiKey == "" {
		h.apiKey = DefaultAPIKey
	}
	if strings.Contains(h.apiKey, "$") {
		return nil, fmt.Errorf("harness: invalid API key %q: CCR would expand '$' from its environment", h.apiKey)
	}
	if h.longContextThreshold == 0 {
		h.longContextThreshold = DefaultLongContextThreshold
	}
	if h.longContextThreshold < 0 {
		return nil, fmt.Errorf("harness: invalid LongContextThreshold: %d", h.longContextThreshold)
	}
	if h.startTimeout == 0 {
		h.startTimeout = DefaultStartTimeout
	}

	cli, err := Install()
	if err != nil {
		return nil, err
	}
	h.cli = cli

	if err := h.setUp(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// setUp starts the fakes, writes the config and starts CCR.
func (h *Harness) setUp() error {
	dir, err := os.MkdirTemp("", "ccrtest-")
	if err != nil {
		return fmt.Errorf("harness: creating temporary directory failed: %w", err)
	}
	h.dir = dir
	for _, sub := range []string{"home", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("harness: creating temporary directory failed: %w", err)
		}
	}

	h.DeepSeek = NewUpstream("deepseek", OpenAI)
	h.Gemini = NewUpstream("gemini", OpenAI)
	h.OpenRouter = NewUpstream("openrouter", OpenAI)
	h.Anthropic = NewUpstream("anthropic", Anthropic)
	h.Broken = NewFailingUpstream("broken", 500)
	h.RateLimited = NewFailingUpstream("ratelimited", 429)
	if h.DeadPort, err = freePort(); err != nil {
		return err
	}
	if h.port, err = freePort(); err != nil {
		return err
	}

	if err := writeConfig(h.ConfigPath(), h.newConfig(h.port)); err != nil {
		return err
	}
	return h.Start()
}

// Start starts CCR on the harness's port and waits until /health returns
// 200. When CCR exits first or the start timeout passes, Start stops CCR
// and returns an error with the tail of CCR's output. Starting a running
// CCR returns an error.
func (h *Harness) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("harness: Start called after Close")
	}
	if h.proc != nil {
		return fmt.Errorf("harness: CCR is already running (pid %d)", h.proc.cmd.Process.Pid)
	}

	// A PID file left by a killed CCR makes `ccr start` report "already
	// running" and exit when the PID has been reused.
	pidFile := filepath.Join(h.dir, "home", ".claude-code-router", ".claude-code-router.pid")
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("harness: removing stale CCR PID file failed: %w", err)
	}
	// A listener already on the port would respond to /health in CCR's
	// place.
	if err := checkPortFree(h.port); err != nil {
		return err
	}

	env := processEnv(filepath.Join(h.dir, "home"), filepath.Join(h.dir, "tmp"))
	p, err := startProcess(h.cli, env, h.LogPath())
	if err != nil {
		return err
	}
	if err := waitHealthy(p, h.port, h.startTimeout); err != nil {
		_ = p.stop()
		return fmt.Errorf("%w\nCCR output (%s):\n%s", err, h.LogPath(), h.LogTail(40))
	}
	if err := checkLoopbackListener(p.cmd.Process.Pid, h.port); err != nil {
		_ = p.stop()
		return err
	}
	h.proc = p
	return nil
}

// Stop stops CCR by its PID: SIGTERM, then SIGKILL if it has not exited
// after 5 seconds. The fakes keep running, so Start can start CCR again on
// the same port. Stopping a stopped CCR does nothing.
func (h *Harness) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopLocked()
}

func (h *Harness) stopLocked() error {
	if h.proc == nil {
		return nil
	}
	err := h.proc.stop()
	h.proc = nil
	return err
}

// Restart stops CCR and starts it again on the same port with the same
// config.
func (h *Harness) Restart() error {
	if err := h.Stop(); err != nil {
		return err
	}
	return h.Start()
}

// Close stops CCR, closes the fakes and removes the temporary directory.
// Calling Close again does nothing.
func (h *Harness) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true

	err := h.stopLocked()
	for _, u := range []*Upstream{h.DeepSeek, h.Gemini, h.OpenRouter, h.Anthropic, h.Broken, h.RateLimited} {
		if u != nil {
			u.Close()
		}
	}
	if h.dir != "" {
		if rmErr := os.RemoveAll(h.dir); rmErr != nil && err == nil {
			err = fmt.Errorf("harness: removing temporary directory failed: %w", rmErr)
		}
	}
	return err
}

// URL returns CCR's base URL, http://127.0.0.1:PORT. It stays the same
// across Stop and Start.
func (h *Harness) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", h.port) }

// Port returns the 127.0.0.1 port CCR listens on.
func (h *Harness) Port() int { return h.port }

// APIKey returns the key CCR requires from clients.
func (h *Harness) APIKey() string { return h.apiKey }

// ConfigPath returns the path of CCR's config.json.
func (h *Harness) ConfigPath() string {
	return filepath.Join(h.dir, "home", ".claude-code-router", "config.json")
}

// LogPath returns the file that CCR's standard output and error go to.
// CCR writes its own log, at warn level, under the temporary HOME's
// .claude-code-router/logs.
func (h *Harness) LogPath() string { return filepath.Join(h.dir, "ccr.log") }

// PID returns the process ID of the running CCR, or 0 while it is stopped.
func (h *Harness) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return 0
	}
	return h.proc.cmd.Process.Pid
}

// LogTail returns the last n lines of CCR's output followed by the last n
// lines of each of CCR's own log files.
func (h *Harness) LogTail(n int) string {
	var b strings.Builder
	if data, err := os.ReadFile(h.LogPath()); err == nil {
		b.WriteString(lastLines(string(data), n))
	}
	logs, _ := filepath.Glob(filepath.Join(h.dir, "home", ".claude-code-router", "logs", "*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n--- %s\n%s", filepath.Base(path), lastLines(string(data), n))
	}
	return b.String()
}

// Start starts a harness for tb, as New does, and closes it in tb's
// Cleanup. It ends tb as SkipOrFatal does when the harness cannot start.
// When tb has failed, the cleanup logs the tail of CCR's logs first.
func Start(tb testing.TB, opts Options) *Harness {
	tb.Helper()
	h, err := New(opts)
	SkipOrFatal(tb, err)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("CCR logs:\n%s", h.LogTail(40))
		}
		if err := h.Close(); err != nil {
			tb.Errorf("closing the CCR harness failed: %v", err)
		}
	})
	return h
}

// SkipOrFatal ends tb when err is not nil. It skips tb when err wraps
// ErrUnavailable, unless RequireToolsEnv is "1", and fails it otherwise.
func SkipOrFatal(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrUnavailable) && os.Getenv(RequireToolsEnv) != "1" {
		tb.Skipf("skipping CCR test: %v (set %s=1 to fail instead)", err, RequireToolsEnv)
	}
	tb.Fatal(err)
}
