package ovf

import (
	"fmt"
	"path"
	"strings"
)

// CheckHref accepts a References/File href only when it names a file
// inside the package: a clean relative slash-separated path without ".."
// components, backslashes, NUL or control characters. URLs are refused:
// http(s)/ftp/file references as ErrUnsupported (this package never
// fetches anything), other schemes and absolute paths as ErrRefused.
func CheckHref(href string) error {
	if href == "" {
		return fmt.Errorf("%w: empty href", ErrMalformed)
	}
	if len(href) > 1024 {
		return fmt.Errorf("%w: href longer than 1024 bytes", ErrRefused)
	}
	if i := strings.Index(href, ":"); i > 0 {
		scheme := strings.ToLower(href[:i])
		switch scheme {
		case "http", "https", "ftp", "file", "nfs", "smb":
			return fmt.Errorf("%w: href %q points outside the package (%s reference; only files inside the package are read)", ErrUnsupported, href, scheme)
		}
		if validScheme(scheme) && strings.HasPrefix(href[i:], "://") {
			return fmt.Errorf("%w: href %q is a URL", ErrRefused, href)
		}
	}
	return checkRelPath(href, "href")
}

func validScheme(s string) bool {
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// checkRelPath is shared by hrefs and tar member names.
func checkRelPath(p, what string) error {
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %s %q contains a control character", ErrRefused, what, p)
		}
	}
	if strings.ContainsRune(p, '\\') {
		return fmt.Errorf("%w: %s %q contains a backslash", ErrRefused, what, p)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: %s %q is an absolute path", ErrRefused, what, p)
	}
	if len(p) >= 2 && p[1] == ':' {
		return fmt.Errorf("%w: %s %q is a drive path", ErrRefused, what, p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return fmt.Errorf("%w: %s %q escapes the package with \"..\"", ErrRefused, what, p)
		}
	}
	if path.Clean(p) != p {
		return fmt.Errorf("%w: %s %q is not a clean path (want %q)", ErrRefused, what, p, path.Clean(p))
	}
	return nil
}
