package harness

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFreePortRefusesConnections(t *testing.T) {
	port, err := freePort()
	require.NoError(t, err)

	_, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "error %v", err)
}

func TestCheckPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	assert.Error(t, checkPortFree(port), "port in use")
	require.NoError(t, l.Close())
	assert.NoError(t, checkPortFree(port), "port closed")
}

func TestCheckLoopbackListener(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("skipping: /proc/net/tcp not found, the check only runs on Linux")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	t.Run("own listener", func(t *testing.T) {
		assert.NoError(t, checkLoopbackListener(os.Getpid(), port))
	})
	t.Run("other process", func(t *testing.T) {
		assert.ErrorContains(t, checkLoopbackListener(os.Getppid(), port), "does not belong")
	})
	t.Run("nothing listening", func(t *testing.T) {
		free, err := freePort()
		require.NoError(t, err)
		assert.ErrorContains(t, checkLoopbackListener(os.Getpid(), free), "nothing listens")
	})
}
