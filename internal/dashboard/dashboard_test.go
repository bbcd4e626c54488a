package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServesThePage(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	Routes(eng)
	srv := httptest.NewServer(eng)
	defer srv.Close()
	for _, tc := range []struct {
		path, ctype string
		want        []string
	}{
		{"/", "text/html", []string{`<script src="/dashboard.js"></script>`, `href="/dashboard.css"`}},
		{"/ui", "text/html", []string{`<script src="/dashboard.js"></script>`}},
		// The script must use the API paths metald serves.
		{"/dashboard.js", "text/javascript", []string{"/api/v1", "'/machines'", "/jobs?active=true", "/events?since="}},
		{"/dashboard.css", "text/css", []string{"progress.bar"}},
	} {
		resp, body := get(t, srv.URL+tc.path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s: %s %s", tc.path, resp.Status, resp.Header.Get("Content-Type"))
		}
		for _, want := range tc.want {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s", tc.path, want)
			}
		}
		for h, want := range map[string]string{"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s %q, want %q", tc.path, h, got, want)
			}
		}
	}
}

// TestNoInlineCode keeps the page within its CSP: no inline script, event
// handler attribute or style, which the policy would block.
func TestNoInlineCode(t *testing.T) {
	for _, re := range []string{`<script>`, `<script[^>]*>[^<]`, `\son[a-z]+=`, `<style`, `style="`, `javascript:`} {
		if regexp.MustCompile(re).Match(page) {
			t.Errorf("index.html matches %s", re)
		}
	}
	if regexp.MustCompile(`style="`).Match(script) {
		t.Errorf("dashboard.js writes a style attribute")
	}
	for _, d := range []string{"script-src 'self'", "frame-ancestors 'none'", "style-src 'self'"} {
		if !strings.Contains(CSP, d) || strings.Contains(CSP, "unsafe-inline") {
			t.Errorf("CSP %q: want %s and no unsafe-inline", CSP, d)
		}
	}
}
