package bootfs

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

func TestServeFileHTTP(t *testing.T) {
	files, _ := NewFiles("", fstest.MapFS{"ipxe.efi": {Data: []byte("0123456789")}})
	for _, tc := range []struct {
		name, rng string
		code      int
		body      string
	}{
		{"ipxe.efi", "", 200, "0123456789"},
		{"ipxe.efi", "bytes=2-4", 206, "234"},
		{"nope.efi", "", 404, ""},
		{"../etc/passwd", "", 400, ""},
	} {
		req := httptest.NewRequest("GET", "/ipxe/x", nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		w := httptest.NewRecorder()
		files.ServeFile(w, req, tc.name)
		if w.Code != tc.code || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("%s %s: %d %q", tc.name, tc.rng, w.Code, w.Body.String())
		}
	}
	_ = http.StatusOK
}
