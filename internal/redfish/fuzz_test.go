package redfish

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzRequest feeds arbitrary paths and bodies to the service: it must
// answer every request with a well-formed status and never panic or 5xx
// (the fake controller never fails).
func FuzzRequest(f *testing.F) {
	for _, s := range []struct{ method, path, body string }{
		{"PATCH", "/redfish/v1/Systems/rack1-07", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`},
		{"POST", "/redfish/v1/Systems/rack1-07/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`},
		{"POST", "/redfish/v1/SessionService/Sessions", `{"UserName":"admin","Password":"pw"}`},
		{"GET", "/redfish/v1/Systems/%zz", ``},
		{"PATCH", "/redfish/v1/Systems/rack1-07", `{"Boot":null}`},
		{"GET", "/redfish/v1//Systems", ``},
	} {
		f.Add(s.method, s.path, s.body)
	}
	svc := New(Config{}, testSystems(), &recController{}, staticAuth{user: "admin", pass: "pw"}, nil)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.SetBasicAuth("admin", "pw")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("%s %s %q: status %d: %s", method, path, body, w.Code, w.Body)
		}
	})
}

func TestSessionStoreLimits(t *testing.T) {
	st := newSessionStore(time.Minute, 2)
	now := time.Unix(1000, 0)
	st.now = func() time.Time { return now }
	a := st.create("a", "a")
	now = now.Add(time.Second)
	b := st.create("b", "b")
	now = now.Add(time.Second)
	c := st.create("c", "c") // evicts a, the least recently used
	if _, ok := st.lookup(a.token); ok {
		t.Fatal("oldest session not evicted")
	}
	if _, ok := st.lookup(b.token); !ok {
		t.Fatal("b lost")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := st.lookup(c.token); ok {
		t.Fatal("idle session not expired")
	}
}
