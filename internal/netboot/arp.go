package netboot

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"strings"
)

// arpLookup finds ip's MAC in the kernel's ARP table (a file in
// /proc/net/arp format); nil if absent or incomplete. After a TFTP transfer
// the kernel has just resolved the client, so this names the MAC even when
// the client's address came from another DHCP server (proxy mode).
func arpLookup(path string, ip netip.Addr) net.HardwareAddr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// IP address  HW type  Flags  HW address  Mask  Device
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[0] != ip.String() || fields[2] == "0x0" {
			continue
		}
		if mac, err := net.ParseMAC(fields[3]); err == nil && len(mac) == 6 && mac.String() != "00:00:00:00:00:00" {
			return mac
		}
	}
	return nil
}
