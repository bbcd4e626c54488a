// Package lldp parses IEEE 802.1AB LLDP frames and listens for them on raw
// AF_PACKET sockets, so the agent can report which switch port each NIC is
// cabled to.
package lldp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// EtherType is LLDP's Ethernet type.
const EtherType = 0x88cc

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed LLDP frame")

// TLV types used here.
const (
	tlvEnd        = 0
	tlvChassisID  = 1
	tlvPortID     = 2
	tlvTTL        = 3
	tlvPortDesc   = 4
	tlvSystemName = 5
)

// ParseFrame parses an Ethernet frame (optionally 802.1Q tagged) carrying
// an LLDPDU.
func ParseFrame(frame []byte) (agentapi.LLDPNeighbor, error) {
	if len(frame) < 14 {
		return agentapi.LLDPNeighbor{}, fmt.Errorf("%w: frame of %d bytes", ErrMalformed, len(frame))
	}
	et := binary.BigEndian.Uint16(frame[12:14])
	body := frame[14:]
	if et == 0x8100 {
		if len(frame) < 18 {
			return agentapi.LLDPNeighbor{}, fmt.Errorf("%w: short VLAN-tagged frame", ErrMalformed)
		}
		et = binary.BigEndian.Uint16(frame[16:18])
		body = frame[18:]
	}
	if et != EtherType {
		return agentapi.LLDPNeighbor{}, fmt.Errorf("%w: ethertype %#04x", ErrMalformed, et)
	}
	return Parse(body)
}

// Parse parses an LLDPDU: the mandatory Chassis ID, Port ID and TTL TLVs
// in that order, then optional TLVs up to End (or the end of the data).
func Parse(b []byte) (agentapi.LLDPNeighbor, error) {
	var n agentapi.LLDPNeighbor
	for i := 0; len(b) > 0; i++ {
		if len(b) < 2 {
			return n, fmt.Errorf("%w: truncated TLV header", ErrMalformed)
		}
		h := binary.BigEndian.Uint16(b[:2])
		typ, ln := int(h>>9), int(h&0x1ff)
		if len(b) < 2+ln {
			return n, fmt.Errorf("%w: TLV type %d length %d exceeds %d remaining bytes", ErrMalformed, typ, ln, len(b)-2)
		}
		v := b[2 : 2+ln]
		b = b[2+ln:]
		want := [...]int{tlvChassisID, tlvPortID, tlvTTL}
		if i < len(want) && typ != want[i] {
			return n, fmt.Errorf("%w: TLV %d is type %d, want %d", ErrMalformed, i+1, typ, want[i])
		}
		switch typ {
		case tlvEnd:
			return n, nil
		case tlvChassisID:
			if ln < 2 || ln > 256 {
				return n, fmt.Errorf("%w: chassis id TLV length %d", ErrMalformed, ln)
			}
			n.ChassisID = chassisID(v[0], v[1:])
		case tlvPortID:
			if ln < 2 || ln > 256 {
				return n, fmt.Errorf("%w: port id TLV length %d", ErrMalformed, ln)
			}
			n.PortID = portID(v[0], v[1:])
		case tlvTTL:
			if ln < 2 {
				return n, fmt.Errorf("%w: TTL TLV length %d", ErrMalformed, ln)
			}
		case tlvPortDesc:
			n.PortDesc = text(v)
		case tlvSystemName:
			n.SystemName = text(v)
		}
	}
	if n.ChassisID == "" && n.PortID == "" {
		return n, fmt.Errorf("%w: no chassis and port id", ErrMalformed)
	}
	return n, nil
}

// chassisID formats by subtype: 4 MAC address, 5 network address, others
// as text.
func chassisID(sub byte, v []byte) string {
	switch sub {
	case 4:
		return mac(v)
	case 5:
		return netAddr(v)
	}
	return text(v)
}

// portID formats by subtype: 3 MAC address, 4 network address, others as
// text (5 interface name, 7 locally assigned...).
func portID(sub byte, v []byte) string {
	switch sub {
	case 3:
		return mac(v)
	case 4:
		return netAddr(v)
	}
	return text(v)
}

func mac(v []byte) string {
	if len(v) == 6 {
		return net.HardwareAddr(v).String()
	}
	return fmt.Sprintf("%x", v)
}

// netAddr is an IANA address family byte and the address.
func netAddr(v []byte) string {
	if len(v) == 5 && v[0] == 1 {
		return netip.AddrFrom4([4]byte(v[1:])).String()
	}
	if len(v) == 17 && v[0] == 2 {
		return netip.AddrFrom16([16]byte(v[1:])).String()
	}
	return fmt.Sprintf("%x", v)
}

// text keeps printable ASCII, as switches send; other bytes become '?'.
func text(v []byte) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, string(v)))
}
