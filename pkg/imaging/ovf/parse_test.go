package ovf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name string) *Envelope {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return env
}

func TestParseRealDescriptors(t *testing.T) {
	tests := []struct {
		file    string
		version string
		files   int
		disks   []Disk
		system  VirtualSystem
	}{
		{
			file: "vmware.ovf", version: "1.x", files: 1,
			disks: []Disk{{ID: "vmdisk1", FileRef: "file1", Href: "input.vmdk", Capacity: 1 << 30, PopulatedSize: 293011456,
				Format: "vmdk-streamOptimized", FormatURI: "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized", FileSize: 152576}},
			system: VirtualSystem{ID: "vmw", Name: "vmw", OSID: "80", OSType: "rhel6_64Guest", OSDescription: "Red Hat Enterprise Linux 6 (64-bit)"},
		},
		{
			file: "cisco-csr1000v.ovf", version: "1.x", files: 2,
			disks: []Disk{{ID: "vmdisk1", FileRef: "file1", Href: "input.vmdk", Capacity: 1 << 30, PopulatedSize: 293011456,
				Format: "vmdk-streamOptimized", FormatURI: "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized", FileSize: 152576}},
			system: VirtualSystem{ID: "com.cisco.csr1000v", Name: "Cisco CSR 1000V Cloud Services Router", OSID: "100", OSType: "other26xLinux64Guest", OSDescription: "Cisco IOS-XE Software"},
		},
		{
			file: "vmware-ovf-0.9.ovf", version: "0.9", files: 1,
			disks: []Disk{{ID: "vmdisk1", FileRef: "file1", Href: "input.vmdk", Capacity: 1 << 30,
				Format: "vmdk-sparse", FormatURI: "http://www.vmware.com/specifications/vmdk.html#sparse", FileSize: 152576}},
			system: VirtualSystem{ID: "v0.9", OSID: "107", OSType: "other26xLinux64Guest"},
		},
		{
			file: "ovf2-multidisk.ovf", version: "2.0", files: 2,
			disks: []Disk{
				{ID: "root", FileRef: "root-file", Href: "images/root.vmdk", Capacity: 20 << 30, PopulatedSize: 1610612736,
					Format: "vmdk-streamOptimized", FormatURI: "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized",
					Compression: "gzip", ChunkSize: 268435456, FileSize: 734003200},
				{ID: "data", FileRef: "data-file", Href: "data.qcow2", Capacity: 512 << 20,
					Format: "qcow2", FormatURI: "http://people.gnome.org/~markmc/qcow-image-format.html", FileSize: 196624},
				{ID: "scratch", Capacity: 10 << 30, Format: "vmdk-streamOptimized",
					FormatURI: "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized", FileSize: -1},
			},
			system: VirtualSystem{ID: "web", Name: "Web server", OSID: "96", OSDescription: "Debian GNU/Linux 12 (64-bit)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			env := parseFile(t, tt.file)
			if env.Version != tt.version {
				t.Errorf("Version = %q, want %q", env.Version, tt.version)
			}
			if len(env.Files) != tt.files {
				t.Errorf("%d files, want %d: %+v", len(env.Files), tt.files, env.Files)
			}
			if len(env.Disks) != len(tt.disks) {
				t.Fatalf("%d disks, want %d: %+v", len(env.Disks), len(tt.disks), env.Disks)
			}
			for i := range tt.disks {
				if env.Disks[i] != tt.disks[i] {
					t.Errorf("disk %d:\n got %+v\nwant %+v", i, env.Disks[i], tt.disks[i])
				}
			}
			if len(env.Systems) == 0 || env.Systems[0] != tt.system {
				t.Errorf("systems = %+v, want first %+v", env.Systems, tt.system)
			}
		})
	}
}

func TestParseNestedSystems(t *testing.T) {
	env := parseFile(t, "ovf2-multidisk.ovf")
	if len(env.Systems) != 2 || env.Systems[1].ID != "db" || env.Systems[1].Name != "Database" || env.Systems[1].OSID != "" {
		t.Fatalf("systems = %+v", env.Systems)
	}
}

func TestSelectDisk(t *testing.T) {
	env := parseFile(t, "ovf2-multidisk.ovf")
	for _, tt := range []struct {
		sel, want string
		err       error
	}{
		{"", "root", nil},
		{"root", "root", nil},
		{"data", "data", nil},
		{"0", "root", nil},
		{"1", "data", nil},
		{"2", "", ErrUnsupported}, // blank disk
		{"scratch", "", ErrUnsupported},
		{"3", "", ErrNoDisk},
		{"-1", "", ErrNoDisk},
		{"nope", "", ErrNoDisk},
	} {
		d, err := env.SelectDisk(tt.sel)
		if !errors.Is(err, tt.err) || (err == nil && d.ID != tt.want) {
			t.Errorf("SelectDisk(%q) = %q, %v; want %q, %v", tt.sel, d.ID, err, tt.want, tt.err)
		}
	}
	_, err := env.SelectDisk("nope")
	if err == nil || !strings.Contains(err.Error(), `0="root", 1="data", 2="scratch"`) {
		t.Errorf("error does not list the disks: %v", err)
	}
	if _, err := (&Envelope{}).SelectDisk(""); !errors.Is(err, ErrNoDisk) {
		t.Errorf("empty envelope: %v", err)
	}
}

// A disk id that looks like a number wins over the index meaning.
func TestSelectDiskNumericID(t *testing.T) {
	env := &Envelope{Disks: []Disk{{ID: "a", Href: "a"}, {ID: "0", Href: "b"}}}
	d, err := env.SelectDisk("0")
	if err != nil || d.Href != "b" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

const envHead = `<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">`

func desc(body string) string { return envHead + body + `</Envelope>` }

func diskDesc(href, capacity, units string) string {
	return desc(`<References><File ovf:id="f" ovf:href="` + href + `"/></References><DiskSection><Disk ovf:diskId="d" ovf:fileRef="f" ovf:capacity="` +
		capacity + `" ovf:capacityAllocationUnits="` + units + `" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>`)
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		err      error
		msg      string
	}{
		{"doctype", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>` + desc(""), ErrRefused, "DOCTYPE"},
		{"entity use", desc(`<References><File ovf:id="f" ovf:href="&xxe;"/></References>`), ErrMalformed, "entity"},
		{"not xml", "hello", ErrMalformed, ""},
		{"empty", "", ErrMalformed, "no root"},
		{"wrong root", `<foo/>`, ErrMalformed, "root element"},
		{"unknown ns", `<Envelope xmlns="urn:x"/>`, ErrUnsupported, "namespace"},
		{"unclosed", envHead, ErrMalformed, ""},
		{"http href", diskDesc("http://example.com/disk.vmdk", "1", "byte"), ErrUnsupported, "outside the package"},
		{"https href", diskDesc("HTTPS://example.com/disk.vmdk", "1", "byte"), ErrUnsupported, ""},
		{"other url", diskDesc("gopher://x/y", "1", "byte"), ErrRefused, "URL"},
		{"absolute href", diskDesc("/etc/passwd", "1", "byte"), ErrRefused, "absolute"},
		{"dotdot href", diskDesc("../x.vmdk", "1", "byte"), ErrRefused, ".."},
		{"inner dotdot", diskDesc("a/../../x.vmdk", "1", "byte"), ErrRefused, ".."},
		{"unclean href", diskDesc("./x.vmdk", "1", "byte"), ErrRefused, "clean"},
		{"backslash href", diskDesc(`..\x.vmdk`, "1", "byte"), ErrRefused, "backslash"},
		{"drive href", diskDesc(`C:x.vmdk`, "1", "byte"), ErrRefused, "drive"},
		{"empty href", diskDesc("", "1", "byte"), ErrMalformed, "empty href"},
		{"control href", diskDesc("a&#9;b", "1", "byte"), ErrRefused, "control"},
		{"capacity overflow", diskDesc("x", "9223372036854775808", "byte"), ErrTooLarge, "overflows"},
		{"capacity×units overflow", diskDesc("x", "9000000000", "byte * 2^40"), ErrTooLarge, "overflows"},
		{"units overflow", diskDesc("x", "1", "byte * 2^64"), ErrTooLarge, ""},
		{"capacity over limit", diskDesc("x", "65", "byte * 2^40"), ErrTooLarge, "exceeds the limit"},
		{"capacity zero", diskDesc("x", "0", "byte"), ErrMalformed, "zero"},
		{"capacity negative", diskDesc("x", "-5", "byte"), ErrMalformed, "negative"},
		{"capacity text", diskDesc("x", "lots", "byte"), ErrMalformed, "decimal"},
		{"capacity property", diskDesc("x", "${size}", "byte"), ErrUnsupported, "property"},
		{"units bits", diskDesc("x", "1", "bit * 2^30"), ErrUnsupported, "not bytes"},
		{"units garbage", diskDesc("x", "1", "byte * two"), ErrUnsupported, ""},
		{"missing file", desc(`<DiskSection><Disk ovf:diskId="d" ovf:fileRef="nope" ovf:capacity="1"/></DiskSection>`), ErrMalformed, "does not declare"},
		{"missing capacity", desc(`<DiskSection><Disk ovf:diskId="d"/></DiskSection>`), ErrMalformed, "capacity"},
		{"missing disk id", desc(`<DiskSection><Disk ovf:capacity="1"/></DiskSection>`), ErrMalformed, "diskId"},
		{"dup disk", desc(`<DiskSection><Disk ovf:diskId="d" ovf:capacity="1"/><Disk ovf:diskId="d" ovf:capacity="1"/></DiskSection>`), ErrMalformed, "twice"},
		{"dup file", desc(`<References><File ovf:id="f" ovf:href="a"/><File ovf:id="f" ovf:href="b"/></References>`), ErrMalformed, "twice"},
		{"file no id", desc(`<References><File ovf:href="a"/></References>`), ErrMalformed, "ovf:id"},
		{"bad compression", desc(`<References><File ovf:id="f" ovf:href="a" ovf:compression="bzip2"/></References>`), ErrUnsupported, "compression"},
		{"zero chunk", desc(`<References><File ovf:id="f" ovf:href="a" ovf:chunkSize="0"/></References>`), ErrMalformed, "chunkSize"},
		{"bad size", desc(`<References><File ovf:id="f" ovf:href="a" ovf:size="1e9"/></References>`), ErrMalformed, "size"},
		{"deep", envHead + strings.Repeat("<a>", 200) + strings.Repeat("</a>", 200) + "</Envelope>", ErrRefused, "deeper"},
		{"utf16", `<?xml version="1.0" encoding="UTF-16"?><Envelope/>`, ErrUnsupported, "encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.msg)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	big := desc(strings.Repeat("<!-- padding -->", 1000))
	if _, err := ParseLimits(strings.NewReader(big), Limits{MaxDescriptorSize: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := ParseLimits(strings.NewReader(big), Limits{MaxDescriptorSize: int64(len(big))}); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	// The default limit is 4 MiB.
	huge := envHead + strings.Repeat(" ", 4<<20) + "</Envelope>"
	if _, err := Parse(strings.NewReader(huge)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("4 MiB default: err = %v", err)
	}
}

func TestParseCapacityLimit(t *testing.T) {
	in := diskDesc("x", "2", "byte * 2^30")
	if _, err := ParseLimits(strings.NewReader(in), Limits{MaxCapacity: 1 << 30}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	env, err := ParseLimits(strings.NewReader(in), Limits{MaxCapacity: 2 << 30})
	if err != nil || env.Disks[0].Capacity != 2<<30 {
		t.Fatalf("got %+v, %v", env, err)
	}
}

// Elements and attributes from other namespaces never count as OVF ones.
func TestParseIgnoresForeignNamespaces(t *testing.T) {
	in := desc(`<References xmlns:x="urn:x"><x:File ovf:id="evil" ovf:href="/etc/passwd"/><File ovf:id="f" ovf:href="a" x:href="/etc/shadow"/></References>`)
	env, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Files) != 1 || env.Files[0].Href != "a" {
		t.Fatalf("files = %+v", env.Files)
	}
}

func TestCapacityUnits(t *testing.T) {
	for _, tt := range []struct {
		v, u string
		want int64
	}{
		{"5", "", 5},
		{"5", "byte", 5},
		{"5", "bytes", 5},
		{"1", "byte * 2^30", 1 << 30},
		{"3", "byte*2^20", 3 << 20},
		{"3", "byte * 10^9", 3e9},
		{"3", "byte * 1024", 3072},
		{"3", "byte * 2^10 * 2^10", 3 << 20},
		{"7", "KiloBytes", 7 << 10},
		{"7", "MegaBytes", 7 << 20},
		{"7", "GigaBytes", 7 << 30},
		{"7", "TeraBytes", 7 << 40},
		{" 8 ", " byte * 2^30 ", 8 << 30},
	} {
		got, err := Capacity(tt.v, tt.u, 1<<62)
		if err != nil || got != tt.want {
			t.Errorf("Capacity(%q, %q) = %d, %v; want %d", tt.v, tt.u, got, err, tt.want)
		}
	}
}

func TestFormatName(t *testing.T) {
	for uri, want := range map[string]string{
		"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized": "vmdk-streamOptimized",
		"http://www.vmware.com/specifications/vmdk.html#sparse":                     "vmdk-sparse",
		"http://www.vmware.com/interfaces/specifications/vmdk.html#sparse":          "vmdk-sparse",
		"http://www.vmware.com/specifications/vmdk.html#compressed":                 "vmdk-compressed",
		"http://www.microsoft.com/technet/virtualserver/downloads/vhdspec.mspx":     "vhd",
		"http://go.microsoft.com/fwlink/?LinkId=137171":                             "vhd",
		"http://www.microsoft.com/vhdx":                                             "vhdx",
		"http://people.gnome.org/~markmc/qcow-image-format.html":                    "qcow2",
		"http://example.org/raw":                                                    "raw",
		"urn:what":                                                                  "unknown",
		"":                                                                          "unknown",
	} {
		if got := FormatName(uri); got != want {
			t.Errorf("FormatName(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestChunkName(t *testing.T) {
	if got := ChunkName("disk.vmdk", 12); got != "disk.vmdk.000000012" {
		t.Fatal(got)
	}
}
