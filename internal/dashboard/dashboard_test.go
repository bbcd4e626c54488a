package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestServesThePage(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	Routes(eng)
	srv := httptest.NewServer(eng)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	// The page must use the API paths metald serves.
	for _, want := range []string{"/api/v1", "'/machines'", "/jobs?active=true", "/events?since="} {
		if !strings.Contains(string(b), want) {
			t.Errorf("page lacks %s", want)
		}
	}
}
