package harness

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// healthPollInterval is how often start polls CCR's /health while it boots.
const healthPollInterval = 50 * time.Millisecond

// stopGrace is how long stop waits after SIGTERM before it sends SIGKILL.
// CCR 2.0.0 drains requests in flight on SIGTERM, and the fakes respond
// at once, so it exits well within this.
const stopGrace = 5 * time.Second

// process is one running CCR.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // the result of cmd.Wait, set before done is closed
}

// startProcess starts `node cli start` with the environment env and its
// output appended to logPath. A goroutine reaps the process and closes
// done when it exits.
func startProcess(cli string, env []string, logPath string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("harness: opening CCR log failed: %w", err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("harness: opening %s failed: %w", os.DevNull, err)
	}
	defer devNull.Close()

	// `ccr start` serves in the foreground in CCR 1.x and 2.x, so the PID
	// of this node process is the PID of the server.
	cmd := exec.Command("node", cli, "start")
	cmd.Env = env
	cmd.Stdin = devNull
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("harness: starting CCR failed: %w", err)
	}

	p := &process{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process, SIGKILL after stopGrace, and waits
// until it has been reaped. Stopping an exited process does nothing.
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("harness: sending SIGTERM to CCR (pid %d) failed: %w", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("harness: sending SIGKILL to CCR (pid %d) failed: %w", p.cmd.Process.Pid, err)
	}
	<-p.done
	return nil
}

// processEnv returns the environment for CCR: the current one with HOME
// and TMPDIR replaced, every proxy variable removed, NO_PROXY set to
// loopback, and SERVICE_PORT removed because it would override the PORT
// in config.json.
func processEnv(home, tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		switch {
		case upper == "HOME", upper == "TMPDIR", upper == "SERVICE_PORT":
		case strings.HasSuffix(upper, "_PROXY"), upper == "PROXY_URL":
		default:
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+home,
		"TMPDIR="+tmp,
		"NO_PROXY=127.0.0.1,localhost",
		"no_proxy=127.0.0.1,localhost",
	)
}

// waitHealthy polls http://127.0.0.1:port/health until it returns 200, the
// process exits, or timeout passes. Polling is the only way to learn when
// the external node process is ready.
func waitHealthy(p *process, port int, timeout time.Duration) error {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/health"
	deadline := time.Now().Add(timeout)
	for {
		if p.exited() {
			return fmt.Errorf("harness: CCR exited during start-up: %v", p.err)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: timed out after %[2]v waiting for 200 from %[1]s", url, timeout)
		}
		time.Sleep(healthPollInterval)
	}
}
