package agent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseCmdline(t *testing.T) {
	cases := []struct {
		in   string
		want Cmdline
		err  string
	}{
		{"BOOT_IMAGE=/vmlinuz metal.mac=52:54:00:AB:CD:EF metal.url=http://10.0.0.1:8080/ console=ttyS0\n",
			Cmdline{MAC: "52:54:00:ab:cd:ef", URL: "http://10.0.0.1:8080", LLDP: DefaultLLDP}, ""},
		{"metal.url=https://metal.example/base metal.debug", Cmdline{URL: "https://metal.example/base", Debug: true, LLDP: DefaultLLDP}, ""},
		{"metal.url=http://h metal.debug=0 metal.lldp=30s", Cmdline{URL: "http://h", LLDP: 30 * time.Second}, ""},
		{"metal.url=http://h metal.lldp=0", Cmdline{URL: "http://h"}, ""},
		{`quiet "metal.url=http://h:1" metal.debug=yes`, Cmdline{URL: "http://h:1", Debug: true, LLDP: DefaultLLDP}, ""},
		{"metal.mac= metal.url=http://h", Cmdline{URL: "http://h", LLDP: DefaultLLDP}, ""},
		{"metal.url=http://h metal.lldp=forever", Cmdline{}, "metal.lldp"},
		{"metal.url=http://h metal.lldp=-1s", Cmdline{}, "metal.lldp"},
		{"console=ttyS0", Cmdline{}, "metal.url missing"},
		{"metal.url=ftp://h", Cmdline{}, `metal.url="ftp://h"`},
		{"metal.url=http://", Cmdline{}, "not an http(s) URL"},
		{"metal.url=http://h metal.mac=zz", Cmdline{}, `metal.mac="zz"`},
		{"metal.url=http://h metal.debug=maybe", Cmdline{}, "not a boolean"},
	}
	for _, c := range cases {
		got, err := ParseCmdline(c.in)
		if c.err != "" {
			if err == nil || !errors.Is(err, ErrCmdline) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseCmdline(%q) err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseCmdline(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add("metal.mac=52:54:00:ab:cd:ef metal.url=http://10.0.0.1:8080 console=ttyS0")
	f.Add(`"metal.url=http://h" metal.debug=1`)
	f.Add("metal.url=")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCmdline(s)
		if err != nil {
			if !errors.Is(err, ErrCmdline) {
				t.Fatalf("error %v does not wrap ErrCmdline", err)
			}
			return
		}
		if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
			t.Fatalf("accepted url %q", c.URL)
		}
	})
}
