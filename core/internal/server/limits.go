package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/core/internal/metrics"
	"github.com/sluice-gw/sluice/core/internal/plan"
	"github.com/sluice-gw/sluice/sdk/gateway"
	"github.com/sluice-gw/sluice/sdk/httpfailure"
)

// limitListener refuses connections beyond a total and a per-address
// bound. fasthttp has both limits too, but answers them in plain text; this
// listener answers in the gateway's failure format (JSON, since no request
// has been read to know what the client accepts), then closes.
type limitListener struct {
	net.Listener
	max, perIP int
	// answer is false under TLS: there is no HTTP to speak before the
	// handshake, so a refused connection is closed without a word.
	answer bool
	log    *slog.Logger
	// metrics count the refused connections; nil counts nothing.
	metrics *metrics.Metrics

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

func newLimitListener(ln net.Listener, max, perIP int, answer bool, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, max: max, perIP: perIP, answer: answer, log: log, byIP: map[string]int{}}
}

// Accept returns the next connection within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := plan.RemoteHost(c.RemoteAddr())
		l.mu.Lock()
		status := 0
		switch {
		case l.max > 0 && l.total >= l.max:
			status = http.StatusServiceUnavailable
		case l.perIP > 0 && l.byIP[ip] >= l.perIP:
			status = http.StatusTooManyRequests
		default:
			l.total++
			l.byIP[ip]++
		}
		l.mu.Unlock()
		if status == 0 {
			return &limitedConn{Conn: c, l: l, ip: ip}, nil
		}
		l.log.Debug("connection refused", "remote", ip, "status", status)
		if l.metrics != nil {
			reason := metrics.RefusedConnections
			if status == http.StatusTooManyRequests {
				reason = metrics.RefusedConnectionsPerIP
			}
			l.metrics.Refuse("", reason)
		}
		// Answered off the accept loop, so a client that reads nothing
		// cannot stall everyone else's accepts.
		go l.refuse(c, status)
	}
}

func (l *limitListener) refuse(c net.Conn, status int) {
	defer c.Close()
	if !l.answer {
		return
	}
	msg := "Too many connections"
	if status == http.StatusServiceUnavailable {
		msg = "The gateway serves its maximum number of connections; retry later"
	}
	_, body := httpfailure.FailureBody([]string{"application/json"}, &gateway.Failure{Status: status, Message: msg})
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write([]byte("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" +
		"Content-Type: application/json\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)))
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
}

// limitedConn gives its slot back once, on the first Close.
type limitedConn struct {
	net.Conn
	l      *limitListener
	ip     string
	once   sync.Once
	linger atomic.Bool
	// read and written count the connection's bytes, so the access log can
	// report what a stream or a WebSocket moved after fasthttp let go of
	// the request (see accesslog.go).
	read, written atomic.Int64
}

// Read reads from the connection and counts the bytes.
func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// Write writes to the connection and counts the bytes.
func (c *limitedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// Lingering bounds how long and how much a connection refused mid-request
// is drained.
const (
	lingerTime  = 5 * time.Second
	lingerBytes = 64 << 20
)

// Close closes the connection and releases its slot. A connection whose
// request was refused before its body was read (413, 431) lingers: its
// write side is closed and what the client still sends is read and dropped
// for a while. Closing at once, with unread data, makes the kernel send a
// reset, and the client loses the answer it has not read yet.
func (c *limitedConn) Close() error {
	if c.linger.Load() {
		c.once.Do(func() {
			go func() {
				defer c.l.release(c.ip)
				defer c.Conn.Close()
				if tc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
					_ = tc.CloseWrite()
				}
				_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
				_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
			}()
		})
		return nil
	}
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// lingerOnClose marks the connection under c (plain or TLS) to linger.
func lingerOnClose(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		lc.linger.Store(true)
	}
}
