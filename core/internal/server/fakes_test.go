package server

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit is an upper bound for things that happen promptly; tests never
// depend on how long anything takes, they only give up eventually.
const waitLimit = 10 * time.Second

// recordingListener records every byte the server wrote successfully to any
// connection, so a test can check what was on the wire when something else
// happened.
type recordingListener struct {
	net.Listener
	mu      sync.Mutex
	written bytes.Buffer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, l: l}, nil
}

func (l *recordingListener) wrote(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.written.Bytes(), []byte(s))
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (c *recordingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.l.mu.Lock()
	c.l.written.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

// streamReader reads a response progressively: until returns everything up
// to and including the next occurrence of want, keeping the rest for later.
type streamReader struct {
	r   io.Reader
	buf []byte
}

func (s *streamReader) until(t *testing.T, want string) string {
	t.Helper()
	chunk := make([]byte, 4096)
	for !bytes.Contains(s.buf, []byte(want)) {
		n, err := s.r.Read(chunk)
		s.buf = append(s.buf, chunk[:n]...)
		if err != nil {
			t.Fatalf("reading until %q: %v (got %q)", want, err, s.buf)
		}
	}
	i := bytes.Index(s.buf, []byte(want)) + len(want)
	out := string(s.buf[:i])
	s.buf = s.buf[i:]
	return out
}

// dechunk returns the data of an HTTP/1.1 chunked body read so far.
func dechunk(t *testing.T, raw string) string {
	t.Helper()
	var out strings.Builder
	for raw != "" {
		raw = strings.TrimPrefix(raw, "\r\n")
		i := strings.Index(raw, "\r\n")
		if i < 0 {
			t.Fatalf("chunked body: no size line in %q", raw)
		}
		n, err := strconv.ParseInt(raw[:i], 16, 64)
		if err != nil || int(n) > len(raw)-i-2 {
			t.Fatalf("chunked body: bad chunk %q", raw)
		}
		out.WriteString(raw[i+2 : i+2+int(n)])
		raw = raw[i+2+int(n):]
	}
	return out.String()
}
