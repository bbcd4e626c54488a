package lldp

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

func tlv(typ int, v ...byte) []byte {
	b := make([]byte, 2, 2+len(v))
	binary.BigEndian.PutUint16(b, uint16(typ<<9|len(v)))
	return append(b, v...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func frame(pdu []byte) []byte {
	h := []byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 0x88, 0xcc}
	return append(h, pdu...)
}

// A frame as a Juniper/Arista switch sends it: MAC chassis id, interface
// name port id, TTL, port description, system name, End.
var switchPDU = cat(
	tlv(1, append([]byte{4}, 0x00, 0x1c, 0x73, 0xaa, 0xbb, 0xcc)...),
	tlv(2, append([]byte{5}, "Ethernet12"...)...),
	tlv(3, 0x00, 0x78),
	tlv(4, []byte("server rack1-07 eth0")...),
	tlv(5, []byte("leaf1.dc1")...),
	tlv(0),
)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want agentapi.LLDPNeighbor
	}{
		{"switch", frame(switchPDU), agentapi.LLDPNeighbor{ChassisID: "00:1c:73:aa:bb:cc", PortID: "Ethernet12", PortDesc: "server rack1-07 eth0", SystemName: "leaf1.dc1"}},
		{"vlan tagged, no End, ip chassis, mac port", cat([]byte{1, 0x80, 0xc2, 0, 0, 0xe, 1, 2, 3, 4, 5, 6, 0x81, 0x00, 0x00, 0x0a, 0x88, 0xcc},
			tlv(1, 5, 1, 10, 0, 0, 1), tlv(2, 3, 2, 0, 0, 0, 0, 9), tlv(3, 0, 30)),
			agentapi.LLDPNeighbor{ChassisID: "10.0.0.1", PortID: "02:00:00:00:00:09"}},
		{"local chassis id with junk bytes", frame(cat(tlv(1, 7, 's', 'w', 0xff), tlv(2, 7, '4', '2'), tlv(3, 0, 1), tlv(0))),
			agentapi.LLDPNeighbor{ChassisID: "sw?", PortID: "42"}},
	}
	for _, c := range cases {
		got, err := ParseFrame(c.in)
		if err != nil || got != c.want {
			t.Errorf("%s: got %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	cases := map[string][]byte{
		"short frame":         {1, 2, 3},
		"wrong ethertype":     append(frame(nil)[:12], 0x08, 0x00),
		"truncated tlv":       frame(switchPDU[:20]),
		"tlv header cut":      frame(switchPDU[:1]),
		"port before chassis": frame(cat(tlv(2, 5, 'x'), tlv(1, 5, 'y'), tlv(3, 0, 1))),
		"empty chassis":       frame(cat(tlv(1, 4), tlv(2, 5, 'x'), tlv(3, 0, 1))),
		"short ttl":           frame(cat(tlv(1, 7, 'a'), tlv(2, 5, 'x'), tlv(3, 0))),
		"empty pdu":           frame(nil),
		"only end":            frame(tlv(0)),
	}
	for name, in := range cases {
		if _, err := ParseFrame(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(frame(switchPDU))
	f.Add(frame(cat(tlv(1, 5, 1, 10, 0, 0, 1), tlv(2, 3, 2, 0, 0, 0, 0, 9), tlv(3, 0, 30))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseFrame(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if n.ChassisID == "" && n.PortID == "" {
			t.Fatalf("accepted a frame without ids: %+v", n)
		}
	})
}
