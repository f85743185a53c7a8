package redisstore

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisServer is a redis-server process that a test starts on 127.0.0.1,
// on a free port, with its files in a temporary directory. It keeps no
// data on disk unless stopped with stop, which saves it for the next start.
type redisServer struct {
	t    testing.TB
	path string
	dir  string
	port int

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// startRedis starts a redis-server for t and stops it, by PID, when t ends.
// It skips t when redis-server is not on PATH, and fails t instead when
// CCRUSAGE_REQUIRE_TOOLS=1.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CCRUSAGE_REQUIRE_TOOLS") == "1" {
			t.Fatalf("redis-server is not on PATH (install the redis-server package), and CCRUSAGE_REQUIRE_TOOLS=1: %v", err)
		}
		t.Skip("redis-server is not on PATH: install the redis-server package to run the tests against a real Redis")
	}
	s := &redisServer{t: t, path: path, dir: t.TempDir(), port: freePort(t)}
	t.Cleanup(s.kill)
	s.start()
	return s
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func (s *redisServer) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// start runs redis-server on s's port and directory, and waits until it
// replies to PING. It loads the data that stop saved, if any.
func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.path,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
	)
	require.NoError(s.t, s.cmd.Start())
	exited := make(chan struct{})
	s.exited = exited
	cmd := s.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	client := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := client.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		select {
		case <-exited:
			s.t.Fatalf("redis-server on port %d exited before answering PING; log:\n%s", s.port, s.log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d did not answer PING within 10 s: %v; log:\n%s", s.port, err, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop shuts the server down after saving its data to its directory, as a
// Redis with persistence keeps it across a restart.
func (s *redisServer) stop() {
	s.t.Helper()
	client := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer client.Close()
	// The server closes the connection instead of replying.
	_ = client.ShutdownSave(context.Background()).Err()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("redis-server on port %d did not exit within 10 s of SHUTDOWN SAVE", s.port)
	}
}

// kill ends the server by its PID if it is still running.
func (s *redisServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *redisServer) log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return err.Error()
	}
	return string(b)
}
