package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// start runs a server with cfg on loopback and returns it with its base
// URL; routes are added by add before Run.
func start(t *testing.T, cfg Config, add func(s *Server)) (*Server, string) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := New(cfg, slog.New(slog.DiscardHandler))
	if add != nil {
		add(s)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s, "http://" + s.Addr().String()
}

func TestRoleServes(t *testing.T) {
	paths := []string{"/healthz", "/boot.ipxe", "/ipxe/snponly.efi", "/agent/initrd", "/agent/vmlinuz", "/nocloud/m1/meta-data",
		"/latest/meta-data", "/agent/v1/register", "/images/os", "/api/v1/machines", "/", "/ui", "/dashboard.js", "/redfish/v1", "/metrics"}
	for _, tc := range []struct {
		role Role
		want string // one letter per path: y or n
	}{
		{RoleAll, "yyyyyyyyyyyyyyy"},
		{RoleMachines, "yyyyyyyyynnnnnn"},
		{RoleBoot, "yyyyyyynnnnnnnn"},
		{RoleAPI, "ynnnnnnnnyyyyyy"},
	} {
		for i, p := range paths {
			if got := tc.role.Serves(p); got != (tc.want[i] == 'y') {
				t.Errorf("%s serves %s: %v", tc.role, p, got)
			}
		}
	}
}

func TestClientIPIgnoresForwardedFor(t *testing.T) {
	_, base := start(t, Config{}, func(s *Server) {
		s.Router().GET("/ip", func(c *gin.Context) { c.String(http.StatusOK, c.ClientIP()) })
	})
	for _, h := range []string{"X-Forwarded-For", "X-Real-IP"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/ip", nil)
		req.Header.Set(h, "6.6.6.6")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "127.0.0.1" {
			t.Errorf("%s: 6.6.6.6 → ClientIP %q, want the peer 127.0.0.1", h, b)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("no nosniff on an API answer")
		}
	}
}

// rawRequest writes head and then body slowly (one byte per gap) and
// returns the status line, or the error that ended the exchange.
func rawRequest(t *testing.T, addr, head, body string, gap time.Duration) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		return "", err
	}
	for i := range len(body) {
		if _, err := c.Write([]byte{body[i]}); err != nil {
			return "", err
		}
		time.Sleep(gap)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestDeadlines(t *testing.T) {
	cfg := Config{ReadTimeout: 300 * time.Millisecond, StreamIdle: 300 * time.Millisecond, WriteTimeout: time.Minute}
	s, _ := start(t, cfg, func(s *Server) {
		read := func(c *gin.Context) {
			if _, err := io.ReadAll(c.Request.Body); err != nil {
				c.String(http.StatusBadRequest, "read: %v", err)
				return
			}
			c.String(http.StatusOK, "ok")
		}
		s.Router().POST("/api/v1/machines", read)
		s.Router().PUT("/api/v1/images/:name", read)
		// A slow handler after its body: the lifted read deadline must
		// not cancel its context.
		s.Router().POST("/api/v1/slow", func(c *gin.Context) {
			io.ReadAll(c.Request.Body)
			select {
			case <-time.After(time.Second):
				c.String(http.StatusOK, "ok")
			case <-c.Request.Context().Done():
				c.String(http.StatusInternalServerError, "cancelled")
			}
		})
		s.Router().GET("/api/v1/events", func(c *gin.Context) {
			time.Sleep(time.Second)
			c.String(http.StatusOK, "ok")
		})
	})
	addr := s.Addr().String()
	post := func(method, path string, n int) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", method, path, n)
	}
	for _, tc := range []struct {
		name, head, body string
		gap              time.Duration
		ok               bool
	}{
		{"ordinary body in time", post("POST", "/api/v1/machines", 4), "abcd", 10 * time.Millisecond, true},
		{"ordinary body trickled past ReadTimeout", post("POST", "/api/v1/machines", 20), strings.Repeat("x", 20), 50 * time.Millisecond, false},
		{"upload trickled past ReadTimeout but never idle", post("PUT", "/api/v1/images/os", 20), strings.Repeat("x", 20), 50 * time.Millisecond, true},
		{"upload stalled past StreamIdle", post("PUT", "/api/v1/images/os", 2), "x", time.Second, false},
		{"slow handler after its body", post("POST", "/api/v1/slow", 2), "xy", 0, true},
		{"long poll without body", "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			line, err := rawRequest(t, addr, tc.head, tc.body, tc.gap)
			ok := err == nil && strings.Contains(line, " 200 ")
			if ok != tc.ok {
				t.Errorf("status %q err %v after %v, want ok=%v", line, err, time.Since(start), tc.ok)
			}
		})
	}
}

func TestConnectionCap(t *testing.T) {
	s, base := start(t, Config{MaxConns: 3}, nil)
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /healthz HTTP/1.1\r\n") // partial headers
		held = append(held, c)
	}
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := hc.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a fourth connection was served while the cap of 3 was reached")
	}
	for _, c := range held {
		c.Close()
	}
	hc.Timeout = 5 * time.Second
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("after the held connections closed: %v", err)
	}
	resp.Body.Close()
}
