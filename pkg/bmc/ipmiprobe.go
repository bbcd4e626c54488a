package bmc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"time"
)

// getChannelAuthCaps is an unauthenticated IPMI v1.5 "Get Channel
// Authentication Capabilities" request (RMCP, session-less, channel E,
// admin privilege, IPMI v2.0 extended data requested), the first packet
// ipmitool -I lanplus sends. Every IPMI BMC answers it without
// credentials.
var getChannelAuthCaps = []byte{
	0x06, 0x00, 0xff, 0x07, // RMCP: version 1.0, no ack, class IPMI
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // auth none, seq 0, session 0
	0x09,                   // message length
	0x20, 0x18, 0xc8, 0x81, // rsAddr BMC, netFn App, checksum, rqAddr
	0x00, 0x38, 0x8e, 0x04, 0xb5, // seq, cmd 0x38, channel E|v2, admin, checksum
}

// ipmiAnswers reports whether something at addr answers IPMI without
// credentials. It tells a rejected session (wrong user, password or
// cipher suite: the BMC answers) from a dead address (no answer), which
// ipmitool reports with one and the same message.
func ipmiAnswers(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	buf := make([]byte, 512)
	for i := 0; i < 3; i++ {
		if _, err := c.Write(getChannelAuthCaps); err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			return n >= 4 && bytes.Equal(buf[:1], []byte{0x06})
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
			return false // ICMP port unreachable, or out of time
		}
	}
	return false
}
