package inventory

import (
	"errors"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Connection strings and BMC URLs carry passwords in three places: a
// URL's user info (postgres://u:pw@h/db), its query (?password=pw, also
// sslpassword), and the key=value form of a libpq DSN (password=pw or
// password='p w'). RedactURL is the one function that hides all of them
// wherever such a string is shown; redactError scrubs the same secrets
// out of errors from code that may echo the string (pgx does).

// masked replaces every password shown.
const masked = "xxxxx"

// secretParams are the connection parameters whose values are secrets.
var secretParams = map[string]bool{"password": true, "sslpassword": true}

// kvSecret matches a secret parameter of a key=value DSN and its value,
// quoted (with \' and \\ escapes) or bare.
var kvSecret = regexp.MustCompile(`(?i)\b(password|sslpassword)(\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s']*)`)

// RedactURL returns s, a URL or a key=value connection string, with every
// password replaced by "xxxxx": the user info's password and the values
// of password and sslpassword parameters. A URL that does not parse is
// replaced entirely, since it may hold a secret anywhere.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		if strings.Contains(s, "=") {
			return kvSecret.ReplaceAllString(s, "${1}${2}"+masked)
		}
		if _, err := url.Parse(s); err != nil {
			return "<unparseable URL>"
		}
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable URL>"
	}
	if q := u.Query(); hasSecretParam(q) {
		for k := range q {
			if secretParams[strings.ToLower(k)] {
				q[k] = []string{masked}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func hasSecretParam(q url.Values) bool {
	for k := range q {
		if secretParams[strings.ToLower(k)] {
			return true
		}
	}
	return false
}

// secretsOf returns the passwords s holds, as written and as decoded,
// longest first.
func secretsOf(s string) []string {
	var out []string
	add := func(v string) {
		if v != "" && v != masked {
			out = append(out, v)
		}
	}
	for _, m := range kvSecret.FindAllStringSubmatch(s, -1) {
		v := m[3]
		add(v)
		if uq := strings.Trim(v, "'"); uq != v {
			add(uq)
			add(strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(uq))
		}
	}
	if u, err := url.Parse(s); err == nil && strings.Contains(s, "://") {
		if pw, ok := u.User.Password(); ok {
			add(pw)
			add(url.UserPassword("", pw).String()[1:]) // as escaped in user info
		}
		for k, vs := range u.Query() {
			if secretParams[strings.ToLower(k)] {
				for _, v := range vs {
					add(v)
					add(url.QueryEscape(v))
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// redactedError is an error whose message no longer shows the passwords
// of a connection string. errors.Is still sees the original's chain;
// nothing else can reach the original message.
type redactedError struct {
	msg  string
	orig error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return errors.Is(e.orig, target) }

// redactError returns err with conn, and every password conn holds,
// masked in its message; nil stays nil.
func redactError(err error, conn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if conn != "" {
		msg = strings.ReplaceAll(msg, conn, RedactURL(conn))
	}
	for _, pw := range secretsOf(conn) {
		msg = strings.ReplaceAll(msg, pw, masked)
	}
	return &redactedError{msg: msg, orig: err}
}
