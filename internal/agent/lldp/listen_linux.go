package lldp

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// Dropped counts frames that failed to parse, across all listeners.
var Dropped atomic.Int64

// nearestBridge is the LLDP destination group address.
var nearestBridge = [8]byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Listen waits up to d on each named interface for one LLDP frame and
// returns the neighbours heard, in interface order. Interfaces that hear
// nothing, or on which no socket can be opened, are left out.
func Listen(ctx context.Context, ifaces []string, d time.Duration, log *slog.Logger) []agentapi.LLDPNeighbor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := make([]*agentapi.LLDPNeighbor, len(ifaces))
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for i, name := range ifaces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := listenOne(ctx, name, deadline)
			if err != nil {
				log.Debug("lldp", "interface", name, "err", err)
				return
			}
			res[i] = n
		}()
	}
	wg.Wait()
	var out []agentapi.LLDPNeighbor
	for _, n := range res {
		if n != nil {
			out = append(out, *n)
		}
	}
	return out
}

func listenOne(ctx context.Context, name string, deadline time.Time) (*agentapi.LLDPNeighbor, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(EtherType)))
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(EtherType), Ifindex: ifi.Index}); err != nil {
		return nil, err
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_MULTICAST, Alen: 6, Address: nearestBridge}
	_ = unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq)
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	buf := make([]byte, 9216)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		// AF_PACKET SOCK_RAW delivers the whole Ethernet frame.
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // EAGAIN on timeout
		}
		nb, err := ParseFrame(buf[:n])
		if err != nil {
			Dropped.Add(1)
			continue
		}
		nb.Interface = name
		return &nb, nil
	}
	return nil, context.DeadlineExceeded
}
