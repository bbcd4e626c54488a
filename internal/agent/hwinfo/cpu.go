package hwinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// CPU parses /proc/cpuinfo: model, sockets (distinct physical ids), cores
// (distinct physical id + core id pairs) and threads (processors).
func CPU(root string) (agentapi.CPU, error) {
	c := agentapi.CPU{Arch: Arch()}
	b, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return c, fmt.Errorf("cpu: %w", err)
	}
	sockets := map[string]bool{}
	cores := map[string]bool{}
	for _, block := range bytes.Split(b, []byte("\n\n")) {
		kv := map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(block))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok {
				kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		if _, ok := kv["processor"]; !ok {
			continue
		}
		c.Threads++
		if c.Model == "" {
			c.Model = kv["model name"]
		}
		if c.Flags == nil && kv["flags"] != "" {
			c.Flags = strings.Fields(kv["flags"])
		}
		phys := kv["physical id"]
		sockets[phys] = true
		if core, ok := kv["core id"]; ok {
			cores[phys+"/"+core] = true
		}
	}
	if c.Threads == 0 {
		return c, fmt.Errorf("cpu: no processor in %s", filepath.Join(root, "proc/cpuinfo"))
	}
	c.Sockets = len(sockets)
	c.Cores = len(cores)
	if c.Cores == 0 {
		c.Cores = c.Threads
	}
	return c, nil
}

// Memory returns MemTotal from /proc/meminfo in bytes.
func Memory(root string) (int64, error) {
	f, err := os.Open(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return 0, fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory: MemTotal %q: %w", f[1], err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("memory: no MemTotal in /proc/meminfo")
}

// DMI reads the SMBIOS identity from /sys/class/dmi/id.
func DMI(root string) agentapi.DMI {
	d := filepath.Join(root, "sys/class/dmi/id")
	r := func(n string) string { return readTrim(filepath.Join(d, n)) }
	return agentapi.DMI{
		SystemVendor:  r("sys_vendor"),
		SystemProduct: r("product_name"),
		SystemSerial:  r("product_serial"),
		SystemUUID:    r("product_uuid"),
		BoardVendor:   r("board_vendor"),
		BoardProduct:  r("board_name"),
		BoardSerial:   r("board_serial"),
	}
}
