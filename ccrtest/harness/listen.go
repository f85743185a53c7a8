package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// freePort returns a 127.0.0.1 port that nothing listens on: it binds an
// ephemeral port and closes it at once. Until someone binds it again, a
// connection to it is refused. Another process could take the port in
// the meantime, which the kernel makes unlikely by handing out ephemeral
// ports in turn.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("harness: reserving a port on 127.0.0.1 failed: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("harness: closing reserved port %d failed: %w", port, err)
	}
	return port, nil
}

// checkPortFree returns an error unless 127.0.0.1:port can be bound now.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("harness: port 127.0.0.1:%d is in use: %w", port, err)
	}
	return l.Close()
}

// tcpListen is the TCP LISTEN state in /proc/net/tcp.
const tcpListen = "0A"

// checkLoopbackListener returns an error unless process pid owns a socket
// listening on 127.0.0.1:port and no socket listens on port at any other
// address. It reads /proc/net/tcp, /proc/net/tcp6 and /proc/PID/fd, and
// returns nil without checking where /proc/net/tcp does not exist (on
// systems other than Linux).
func checkLoopbackListener(pid, port int) error {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		return nil
	}

	loopback := map[string]bool{} // socket inodes listening on 127.0.0.1:port
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeners, err := readListeners(table, port)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return err
		}
		for _, l := range listeners {
			if l.address != "0100007F" {
				return fmt.Errorf("harness: a socket listens on port %d at an address other than 127.0.0.1 (%s entry %s)", port, table, l.address)
			}
			loopback[l.inode] = true
		}
	}
	if len(loopback) == 0 {
		return fmt.Errorf("harness: nothing listens on 127.0.0.1:%d", port)
	}

	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return fmt.Errorf("harness: listing the sockets of CCR (pid %d) failed: %w", pid, err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue // the descriptor was closed meanwhile
		}
		inode, ok := strings.CutPrefix(target, "socket:[")
		if ok && loopback[strings.TrimSuffix(inode, "]")] {
			return nil
		}
	}
	return fmt.Errorf("harness: the socket listening on 127.0.0.1:%d does not belong to CCR (pid %d)", port, pid)
}

// listener is a listening socket from /proc/net/tcp or /proc/net/tcp6.
type listener struct {
	address string // local address in the table's hex notation
	inode   string
}

// readListeners returns the sockets in the /proc/net table that listen on
// port. A row reads "sl local_address rem_address st ... uid timeout
// inode", where local_address is ADDRESS:PORT in hex.
func readListeners(table string, port int) ([]listener, error) {
	f, err := os.Open(table)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	wantPort := fmt.Sprintf("%04X", port)
	var listeners []listener
	scanner := bufio.NewScanner(f)
	scanner.Scan() // the header line
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		address, localPort, ok := strings.Cut(fields[1], ":")
		if !ok || localPort != wantPort {
			continue
		}
		listeners = append(listeners, listener{address: address, inode: fields[9]})
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("harness: reading %s failed: %w", table, err)
	}
	return listeners, nil
}
