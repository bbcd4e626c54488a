package lab

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// inNS runs fn on an OS thread switched into the lab's network namespace;
// sockets fn creates stay in that namespace.
func (l *Lab) inNS(fn func() error) error { return inNamespace(l.NS, fn) }

// Listen opens a TCP listener inside the namespace.
func (l *Lab) Listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := l.inNS(func() (err error) { ln, err = net.Listen("tcp4", addr); return err })
	return ln, err
}

// Dial connects to a TCP address from inside the namespace.
func (l *Lab) Dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := l.inNS(func() (err error) { c, err = net.Dial("tcp4", addr); return err })
	return c, err
}

// CutProxy is a TCP proxy in the namespace that cuts the first connection
// carrying an HTTP request for a path with a given prefix after a number
// of response bytes: a dropped connection in the middle of an image
// download.
type CutProxy struct {
	ln       net.Listener
	target   string
	lab      *Lab
	prefix   []byte
	cutAfter int64
	cut      atomic.Bool
	rate     atomic.Int64
	imgBytes atomic.Int64
	mu       sync.Mutex
	requests []string // request lines with the prefix, "+range" when ranged
}

// StartCutProxy listens on listen (in the namespace) and forwards to
// target; the first connection that asks for "GET <prefix>" is closed
// after cutAfter bytes of response (never when cutAfter < 0).
func (l *Lab) StartCutProxy(listen, target, prefix string, cutAfter int64) (*CutProxy, error) {
	ln, err := l.Listen(listen)
	if err != nil {
		return nil, err
	}
	p := &CutProxy{ln: ln, target: target, lab: l, prefix: []byte("GET " + prefix), cutAfter: cutAfter}
	go p.serve()
	l.mu.Lock()
	l.closers = append(l.closers, ln.Close)
	l.mu.Unlock()
	return p, nil
}

// Requests are the request lines seen for the prefix, in order; a ranged
// request ends in " +range".
func (p *CutProxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// SetRate limits responses on connections that asked for the prefix to
// about bytesPerSec (0: no limit), so that a download lasts long enough to
// break it from outside.
func (p *CutProxy) SetRate(bytesPerSec int64) { p.rate.Store(bytesPerSec) }

// ImageBytes is how many response bytes connections that asked for the
// prefix have delivered so far.
func (p *CutProxy) ImageBytes() int64 { return p.imgBytes.Load() }

// Cut reports whether a connection was cut.
func (p *CutProxy) Cut() bool { return p.cut.Load() }

func (p *CutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *CutProxy) handle(c net.Conn) {
	defer c.Close()
	s, err := p.lab.Dial(p.target)
	if err != nil {
		return
	}
	defer s.Close()
	if tc, ok := s.(*net.TCPConn); ok && p.rate.Load() > 0 {
		// A slowed download must not sit in this side's socket buffer:
		// then a killed metald would still have delivered it all.
		_ = tc.SetReadBuffer(64 << 10)
	}
	var victim, image atomic.Bool
	go func() {
		// client → server: look at each chunk for the prefix.
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				if i := bytes.Index(chunk, p.prefix); i >= 0 {
					line := chunk[i:]
					if j := bytes.IndexByte(line, '\r'); j >= 0 {
						line = line[:j]
					}
					rec := string(line)
					if bytes.Contains(bytes.ToLower(chunk), []byte("\nrange: bytes=")) {
						rec += " +range"
					}
					p.mu.Lock()
					p.requests = append(p.requests, rec)
					p.mu.Unlock()
					image.Store(true)
					if p.cutAfter >= 0 && p.cut.CompareAndSwap(false, true) {
						victim.Store(true)
					}
				}
				if _, werr := s.Write(chunk); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if tc, ok := s.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	// server → client, cut short on the victim connection.
	var sent int64
	base := int64(-1) // sent when the image request was seen
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if victim.Load() && base < 0 {
				base = sent
			}
			if base >= 0 && sent+int64(n)-base > p.cutAfter {
				_, _ = c.Write(buf[:base+p.cutAfter-sent])
				return // closes both: the client sees a short body
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
			if image.Load() {
				p.imgBytes.Add(int64(n))
			}
			if r := p.rate.Load(); r > 0 && image.Load() {
				time.Sleep(time.Duration(int64(n) * int64(time.Second) / r))
			}
		}
		if err != nil {
			return
		}
	}
}
