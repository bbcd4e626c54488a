package itest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// stall opens n connections to addr that each send a request head or a
// request body too slowly ever to finish: partial headers on even ones, a
// body trickled one byte a second on odd ones. It returns the connections.
func stall(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Slow: ", addr)
		} else {
			fmt.Fprintf(c, "POST /api/v1/machines HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", addr)
		}
	}
	return conns
}

// trickle writes one byte a second on every connection until stop closes.
func trickle(conns []net.Conn, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 60 {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				c.Write([]byte(" "))
			}
		}
	}()
	return &wg
}

// healthy asserts /healthz answers within d.
func healthy(t *testing.T, url string, d time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := (&http.Client{Timeout: d}).Get(url + "/healthz")
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	t.Logf("/healthz answered in %v", time.Since(start).Round(time.Millisecond))
}

// TestSlowClientsCannotStarveMetald holds 300 connections to the real
// metald that trickle headers or bodies: /healthz keeps answering at once,
// and metald drops the stalled header senders after its header timeout.
func TestSlowClientsCannotStarveMetald(t *testing.T) {
	m := StartMetald(t, "", "--power-poll", "0")
	conns := stall(t, m.Addr, 300)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stop := make(chan struct{})
	wg := trickle(conns, stop)
	defer func() { close(stop); wg.Wait() }()
	for range 5 {
		healthy(t, m.URL, 2*time.Second)
		time.Sleep(500 * time.Millisecond)
	}
	// Headers must be complete within 10 s and bodies of ordinary routes
	// within 30 s: after 12 s every header trickler has been dropped.
	time.Sleep(10 * time.Second)
	closed := 0
	buf := make([]byte, 512)
	for i := 0; i < len(conns); i += 2 {
		conns[i].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := conns[i].Read(buf); err == io.EOF {
			closed++
		} else if err == nil {
			closed++ // an error answer (408) before the close
		}
	}
	if closed != len(conns)/2 {
		t.Errorf("%d of %d header tricklers dropped after 10 s, want all", closed, len(conns)/2)
	}
	healthy(t, m.URL, 2*time.Second)
}

// TestConnectionCapRealMetald: with --http-max-conns 50, 50 stalled
// connections keep a 51st from being served; once they close, metald
// answers again.
func TestConnectionCapRealMetald(t *testing.T) {
	m := StartMetald(t, "", "--power-poll", "0", "--http-max-conns", "50")
	conns := stall(t, m.Addr, 50)
	resp, err := (&http.Client{Timeout: time.Second}).Get(m.URL + "/healthz")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("/healthz answered (%s) while 50 of 50 connections were taken", resp.Status)
	}
	for _, c := range conns {
		c.Close()
	}
	healthy(t, m.URL, 5*time.Second)
}
