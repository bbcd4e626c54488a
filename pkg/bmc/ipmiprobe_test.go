package bmc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
)

func TestIPMIProbe(t *testing.T) {
	// A responder that answers only the probe packet.
	answer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer answer.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := answer.ReadFrom(buf)
			if err != nil {
				return
			}
			if bytes.Equal(buf[:n], getChannelAuthCaps) {
				_, _ = answer.WriteTo([]byte{0x06, 0x00, 0xff, 0x07, 0, 0, 0, 0}, from)
			}
		}
	}()
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closed, _ := net.ListenPacket("udp", "127.0.0.1:0")
	closedAddr := closed.LocalAddr().String()
	closed.Close()

	ctx := context.Background()
	if !ipmiAnswers(ctx, answer.LocalAddr().String()) {
		t.Error("answering bmc not detected")
	}
	if ipmiAnswers(ctx, silent.LocalAddr().String()) {
		t.Error("silent port detected as bmc")
	}
	if ipmiAnswers(ctx, closedAddr) {
		t.Error("closed port detected as bmc")
	}

	ep := Endpoint{Protocol: ProtocolIPMI, Host: "127.0.0.1", Username: "u", Password: "pw-secret"}
	raw := errors.New("Error: Unable to establish IPMI v2 / RMCP+ session")
	_, port, _ := net.SplitHostPort(answer.LocalAddr().String())
	ep.Port = mustAtoi(t, port)
	if err := refineIPMI(ctx, ep, wrapErr(ep, "power status", raw)); !errors.Is(err, ErrAuth) || !errors.Is(err, ErrNoSession) {
		t.Errorf("alive bmc: %v", err)
	}
	_, port, _ = net.SplitHostPort(closedAddr)
	ep.Port = mustAtoi(t, port)
	if err := refineIPMI(ctx, ep, wrapErr(ep, "power status", raw)); !errors.Is(err, ErrUnreachable) || !errors.Is(err, ErrNoSession) {
		t.Errorf("dead bmc: %v", err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("bad port %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
