package bootfs

import (
	"errors"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"undionly.kpxe": "undionly.kpxe", "sub/x.txt": "sub/x.txt", "a//b": "a/b", "./a": "a",
		// GRUB's names: one leading slash is the served root.
		"/grub/grub.cfg": "grub/grub.cfg", "/grub/grub.cfg-52:54:00:12:34:56": "grub/grub.cfg-52:54:00:12:34:56",
		"/etc/passwd": "etc/passwd",
	} {
		if got, err := CleanPath(in); err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "//etc/passwd", "/../etc/passwd", "/grub/../../x", "../../etc/passwd", "a/../../b", "..", "a\\..\\b", "a\x00b", "a\nb", ".", "/.", strings.Repeat("a", 300)} {
		if got, err := CleanPath(in); !errors.Is(err, ErrBadPath) {
			t.Errorf("CleanPath(%q) = %q, %v; want ErrBadPath", in, got, err)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"undionly.kpxe", "../../etc/passwd", "/etc/passwd", "a\\b", "a\x00b", "a/./b//c", "....//..//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanPath(in)
		if err != nil {
			return
		}
		if strings.HasPrefix(out, "/") || strings.Contains(out, "\\") || strings.ContainsRune(out, 0) {
			t.Fatalf("CleanPath(%q) = %q", in, out)
		}
		for _, el := range strings.Split(out, "/") {
			if el == ".." || el == "" {
				t.Fatalf("CleanPath(%q) = %q has element %q", in, out, el)
			}
		}
	})
}
