package redisstore

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ccrusage/ccrusage"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// replyDropper is a TCP proxy on 127.0.0.1 in front of a test's
// redis-server. Once armed, it forwards the next script call (EVALSHA or
// EVAL) to the server, waits for the server's reply, and closes the
// client's connection instead of relaying it: the script ran, and the
// client sees only a broken connection.
type replyDropper struct {
	ln      net.Listener
	target  string
	armed   atomic.Bool
	dropped atomic.Int64

	mu    sync.Mutex // guards conns
	conns []net.Conn
	wg    sync.WaitGroup
}

func startReplyDropper(t *testing.T, target string) *replyDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &replyDropper{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *replyDropper) addr() string { return p.ln.Addr().String() }

func (p *replyDropper) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.relay(client, server)
	}
}

// relay copies requests from client to server and replies back, dropping
// the reply to the script call that the proxy was armed for.
func (p *replyDropper) relay(client, server net.Conn) {
	var dropNext atomic.Bool
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && dropNext.Load() {
				p.dropped.Add(1)
				_ = client.Close()
				_ = server.Close()
				return
			}
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = client.Close()
				return
			}
		}
	}()

	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			request := bytes.ToLower(buf[:n])
			isScript := bytes.Contains(request, []byte("\r\nevalsha\r\n")) || bytes.Contains(request, []byte("\r\neval\r\n"))
			if isScript && p.armed.CompareAndSwap(true, false) {
				dropNext.Store(true)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = server.Close()
			return
		}
	}
}

func (p *replyDropper) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func TestStoreLostReplyNotAppliedTwice(t *testing.T) {
	for _, tc := range []struct {
		name string
		// configure sets the client's own retries. With them, go-redis
		// sends the script again on a new connection. Without them, Flush
		// fails and the next Flush retries the batch.
		configure  func(*redis.Options)
		flushFails bool
	}{
		{name: "client retries", configure: nil},
		{name: "store retries", configure: fastFailure, flushFails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t)
			proxy := startReplyDropper(t, srv.addr())
			client := newClient(t, proxy.addr(), tc.configure)
			direct := newClient(t, srv.addr(), nil)
			log := &alertLog{}
			cfg := limited(ccrusage.NewManualClock(base), log, ccrusage.ProviderGemini, nil, ccrusage.Limits{Requests: 10})
			in := newInstance(t, client, cfg, Options{})

			for i := 0; i < 8; i++ {
				record(t, in.tr, ccrusage.ProviderGemini, ccrusage.TaskDefault, ccrusage.Usage{InputTokens: 3})
			}
			proxy.armed.Store(true)
			err := in.st.Flush(context.Background())
			require.Equal(t, int64(1), proxy.dropped.Load(), "the proxy dropped one reply")
			if tc.flushFails {
				require.Error(t, err)
				assert.False(t, in.tr.Snapshot().Store.Available)
				// The script ran: Redis has the batch before any retry.
				assert.Equal(t, "8", hash(t, direct, "{ccrusage}:counts:gemini:2031-03-14")["default:requests"])
				assert.Empty(t, log.levels(), "the claim was won, but its reply was lost")

				// New changes wait for the next batch.
				record(t, in.tr, ccrusage.ProviderGemini, ccrusage.TaskThink, ccrusage.Usage{})
				flush(t, in.st)
			} else {
				require.NoError(t, err)
			}

			counts := hash(t, direct, "{ccrusage}:counts:gemini:2031-03-14")
			assert.Equal(t, "8", counts["default:requests"])
			assert.Equal(t, "24", counts["default:input_tokens"])
			assert.Equal(t, []ccrusage.Level{ccrusage.LevelWarning}, log.levels(), "the retry finds its own claim")
			assert.True(t, in.tr.Snapshot().Store.Available)
			used := status(t, in.tr, ccrusage.ProviderGemini).Requests.Used
			if tc.flushFails {
				assert.Equal(t, "1", counts["think:requests"])
				assert.Equal(t, int64(9), used)
			} else {
				assert.Equal(t, int64(8), used)
			}
		})
	}
}
