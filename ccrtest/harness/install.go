package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the claude-code-router release the harness installs. The
// registry's 3.x releases do not install (a dependency is missing from the
// npm registry) and keep their configuration in SQLite, not config.json.
const Version = "2.0.0"

// packageName is claude-code-router's npm package.
const packageName = "@musistudio/claude-code-router"

// minNodeMajor is the oldest Node.js major release that claude-code-router
// 2.0.0 declares support for in its package.json engines field.
const minNodeMajor = 20

// installTimeout bounds one npm install. A cold install of 2.0.0 fetches
// one 12 MB package.
const installTimeout = 5 * time.Minute

// ErrUnavailable is returned, wrapped with the cause, when a tool the
// harness needs is missing: node or npm is not installed, node is too old,
// or npm cannot reach its registry. Tests skip on it unless
// RequireToolsEnv is "1".
var ErrUnavailable = errors.New("harness: required tool unavailable")

// installed is the result of the one install per process.
var installed struct {
	once sync.Once
	cli  string
	err  error
}

// Install installs claude-code-router Version with npm, once per process,
// and returns the path of its dist/cli.js. The package goes into a cache
// directory keyed by version, .cache/ccr-<Version> in the ccrtest module
// (or in the system temp directory when the module's source is not on
// disk), so later test runs reuse it. npm's own cache is kept beside it.
func Install() (string, error) {
	installed.once.Do(func() {
		installed.cli, installed.err = install()
	})
	return installed.cli, installed.err
}

func install() (string, error) {
	if err := checkNode(); err != nil {
		return "", err
	}
	cacheDir := cacheDir()
	target := filepath.Join(cacheDir, "ccr-"+Version)
	if cli, ok := installedCLI(target); ok {
		return cli, nil
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("%w: npm not found in PATH", ErrUnavailable)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("harness: creating cache directory failed: %w", err)
	}

	// Install into a fresh directory and rename it into place, so two test
	// binaries installing at once never share a half-written tree.
	staging, err := os.MkdirTemp(cacheDir, "install-")
	if err != nil {
		return "", fmt.Errorf("harness: creating install directory failed: %w", err)
	}
	defer os.RemoveAll(staging) // a no-op once the rename succeeded

	if err := runNPMInstall(npm, staging, filepath.Join(cacheDir, "npm")); err != nil {
		return "", err
	}
	if _, ok := installedCLI(staging); !ok {
		return "", fmt.Errorf("harness: npm install finished but %s@%s is not in %s", packageName, Version, staging)
	}
	if err := os.Rename(staging, target); err != nil {
		// Another process may have renamed its install into place first.
		if cli, ok := installedCLI(target); ok {
			return cli, nil
		}
		return "", fmt.Errorf("harness: moving the install into %s failed: %w", target, err)
	}
	cli, _ := installedCLI(target)
	return cli, nil
}

// checkNode returns an error wrapping ErrUnavailable unless node is in PATH
// and at least minNodeMajor.
func checkNode() error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("%w: node not found in PATH", ErrUnavailable)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return fmt.Errorf("harness: running node --version failed: %w", err)
	}
	version := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if err != nil {
		return fmt.Errorf("harness: invalid node version: %q", version)
	}
	if major < minNodeMajor {
		return fmt.Errorf("%w: node %s is older than the required v%d", ErrUnavailable, version, minNodeMajor)
	}
	return nil
}

// cacheDir returns the directory that holds installs and npm's cache: the
// .cache directory of the ccrtest module, found from this file's path.
// Under -trimpath that path is not on disk, and a directory in the system
// temp directory is used instead.
func cacheDir() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		module := filepath.Dir(filepath.Dir(file))
		if _, err := os.Stat(filepath.Join(module, "go.mod")); err == nil {
			return filepath.Join(module, ".cache")
		}
	}
	return filepath.Join(os.TempDir(), "ccrusage-ccrtest-cache")
}

// installedCLI returns the path of dist/cli.js under prefix and true when
// prefix holds claude-code-router Version.
func installedCLI(prefix string) (string, bool) {
	pkg := filepath.Join(prefix, "node_modules", filepath.FromSlash(packageName))
	data, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil {
		return "", false
	}
	var meta struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(data, &meta) != nil || meta.Version != Version {
		return "", false
	}
	cli := filepath.Join(pkg, "dist", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		return "", false
	}
	return cli, true
}

// networkError matches the npm error codes of a registry that cannot be
// reached, as opposed to a package or version that does not exist.
var networkError = regexp.MustCompile(`\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ESOCKETTIMEDOUT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)\b`)

// runNPMInstall installs the pinned package into prefix. Install scripts
// are skipped because claude-code-router 2.0.0 needs none: its tokenizer
// ships as WebAssembly.
func runNPMInstall(npm, prefix, npmCache string) error {
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()

	// npm's default retries wait 10 to 60 seconds each. One short retry
	// keeps an unreachable registry from holding the tests for a minute.
	cmd := exec.CommandContext(ctx, npm, "install",
		"--prefix", prefix,
		"--cache", npmCache,
		"--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error",
		"--fetch-retries=1", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000",
		"--fetch-timeout=60000",
		packageName+"@"+Version)
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	err := cmd.Run()
	if err == nil {
		return nil
	}

	tail := lastLines(output.String(), 20)
	if ctx.Err() != nil {
		return fmt.Errorf("%w: npm install timed out after %v, registry unreachable?\n%s", ErrUnavailable, installTimeout, tail)
	}
	if code := networkError.FindString(output.String()); code != "" {
		return fmt.Errorf("%w: npm install failed, registry unreachable (%s)", ErrUnavailable, code)
	}
	return fmt.Errorf("harness: npm install %s@%s failed: %w\n%s", packageName, Version, err, tail)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
