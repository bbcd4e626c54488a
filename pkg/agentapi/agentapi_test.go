package agentapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestTaskValidate(t *testing.T) {
	img := &Image{URL: "http://10.0.0.1/images/a.qcow2", VirtualSize: 1 << 30, SHA256: strings.Repeat("ab", 32)}
	cases := []struct {
		name string
		task Task
		want string // substring of the error, "" for valid
	}{
		{"provision", Task{ID: "t1", Kind: TaskProvision, Token: "x", Image: img}, ""},
		{"inspect", Task{ID: "t1", Kind: TaskInspect, Token: "x"}, ""},
		{"wipe reboot", Task{ID: "t1", Kind: TaskWipe, Token: "x", After: AfterReboot}, ""},
		{"no id", Task{Kind: TaskWipe, Token: "x"}, "without id"},
		{"no token", Task{ID: "t1", Kind: TaskWipe}, "without token"},
		{"unknown kind", Task{ID: "t1", Kind: "dance", Token: "x"}, `unknown kind "dance"`},
		{"unknown after", Task{ID: "t1", Kind: TaskWipe, Token: "x", After: "explode"}, `unknown after "explode"`},
		{"provision no image", Task{ID: "t1", Kind: TaskProvision, Token: "x"}, "without image url"},
		{"provision no size", Task{ID: "t1", Kind: TaskProvision, Token: "x", Image: &Image{URL: "http://x/"}}, "virtual size 0"},
		{"provision bad sha", Task{ID: "t1", Kind: TaskProvision, Token: "x", Image: &Image{URL: "http://x/", VirtualSize: 1, SHA256: "ABC"}}, "64 lower-case hex"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.task.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid task refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestRequestValidate(t *testing.T) {
	ok := RegisterRequest{Version: Version, MAC: "52:54:00:AA:bb:01"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]RegisterRequest{
		"version": {Version: 99, MAC: "52:54:00:aa:bb:01"},
		"mac":     {Version: Version, MAC: "52:54:00"},
		"eui64":   {Version: Version, MAC: "02:00:5e:10:00:00:00:01"},
	} {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if err := (&Result{Version: Version, TaskID: "t"}).Validate(); err == nil {
		t.Error("failed result without error text accepted")
	}
	if err := (&Result{Version: Version, TaskID: "t", Success: true}).Validate(); err != nil {
		t.Error(err)
	}
	if err := (&Progress{Version: Version, TaskID: "t", BytesRead: -1}).Validate(); err == nil {
		t.Error("negative progress accepted")
	}
	if m, err := NormalizeMAC(" 52-54-00-AA-BB-01 "); err != nil || m != "52:54:00:aa:bb:01" {
		t.Errorf("NormalizeMAC = %q, %v", m, err)
	}
}

// The JSON field names are the contract with metald: pin them.
func TestWireNames(t *testing.T) {
	a := Assignment{Version: 1, Machine: "m1", PollIntervalSeconds: 5, Task: &Task{
		ID: "t", Kind: TaskProvision, Token: "tok", After: AfterReboot,
		Image:           &Image{URL: "u", SHA256: "s", VirtualSize: 7},
		RootDeviceHints: &RootDeviceHints{Serial: "S", WWN: "W", Name: "sda", MinSizeBytes: 9},
	}}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"machine":"m1","task":{"id":"t","kind":"provision","token":"tok","image":{"url":"u","sha256":"s","virtual_size":7},"root_device_hints":{"serial":"S","wwn":"W","name":"sda","min_size_bytes":9},"after":"reboot"},"poll_interval_seconds":5}`
	if string(b) != want {
		t.Errorf("assignment JSON\n got %s\nwant %s", b, want)
	}
	inv := Inventory{CPU: CPU{Model: "m", Arch: "x86_64", Sockets: 1, Cores: 2, Threads: 4}, MemoryBytes: 1,
		Disks: []Disk{{Name: "vda", SizeBytes: 2, ByPath: "pci-0000:00:04.0"}},
		NICs:  []NIC{{Name: "eth0", MAC: "52:54:00:00:00:01", Driver: "virtio_net", Link: true, SpeedMbps: -1}},
		LLDP:  []LLDPNeighbor{{Interface: "eth0", ChassisID: "c", PortID: "p", SystemName: "sw1"}}}
	b, _ = json.Marshal(inv)
	for _, k := range []string{`"memory_bytes":1`, `"by_path":"pci-0000:00:04.0"`, `"driver":"virtio_net"`, `"speed_mbps":-1`, `"system_name":"sw1"`, `"threads":4`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("inventory JSON %s lacks %s", b, k)
		}
	}
}

// metald decodes these from untrusted agents: decoding plus Validate must
// never panic, and what validates must be consistent.
func FuzzDecodeValidate(f *testing.F) {
	f.Add([]byte(`{"version":1,"mac":"52:54:00:aa:bb:01","inventory":{"cpu":{"model":"x"},"disks":[{"name":"vda","size_bytes":1}]}}`))
	f.Add([]byte(`{"version":1,"task_id":"t","success":false,"error":"boom"}`))
	f.Add([]byte(`{"version":1,"task_id":"t","phase":"writing","bytes_read":-5}`))
	f.Add([]byte(`{"id":"t","kind":"provision","token":"x","image":{"url":"http://h/i","virtual_size":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var reg RegisterRequest
		if json.Unmarshal(b, &reg) == nil && reg.Validate() == nil {
			if _, err := NormalizeMAC(reg.MAC); err != nil {
				t.Fatalf("validated register with bad mac %q", reg.MAC)
			}
		}
		var res Result
		if json.Unmarshal(b, &res) == nil && res.Validate() == nil && !res.Success && res.Error == "" {
			t.Fatal("validated failed result without error")
		}
		var p Progress
		if json.Unmarshal(b, &p) == nil && p.Validate() == nil && (p.BytesRead < 0 || p.BytesWritten < 0) {
			t.Fatal("validated negative progress")
		}
		var task Task
		if json.Unmarshal(b, &task) == nil && task.Validate() == nil && task.Kind == TaskProvision && (task.Image == nil || task.Image.VirtualSize <= 0) {
			t.Fatal("validated provision without image size")
		}
	})
}
