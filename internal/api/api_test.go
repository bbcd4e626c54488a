package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

type fixture struct {
	srv   *httptest.Server
	token string
	store *inventory.SQLite
	eng   *gin.Engine
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	store, err := inventory.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	_, secret, err := store.CreateToken(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	eng := gin.New()
	New(store, slog.New(slog.NewTextHandler(io.Discard, nil))).Routes(eng)
	srv := httptest.NewServer(eng)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, token: secret, store: store, eng: eng}
}

func (f *fixture) call(t *testing.T, method, path, body string) (int, metalapi.Error, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e metalapi.Error
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e, b
}

func TestErrorsNameWhatIsWrong(t *testing.T) {
	f := newFixture(t)
	if code, _, b := f.call(t, "POST", "/api/v1/machines", `{"name":"m1","macs":["52:54:00:aa:00:01"]}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	cases := []struct {
		method, path, body string
		status             int
		code, msg          string
	}{
		{"POST", "/api/v1/machines", `{"name":"m2","macs":["nope"]}`, 400, metalapi.CodeInvalid, `mac "nope"`},
		{"POST", "/api/v1/machines", `{"name":"m2","macs":["52:54:00:aa:00:02"],"colour":"red"}`, 400, metalapi.CodeInvalid, `unknown field "colour"`},
		{"POST", "/api/v1/machines", `{"name":"m2","macs":"52:54:00:aa:00:02"}`, 400, metalapi.CodeInvalid, `field "macs"`},
		{"POST", "/api/v1/machines", `{"name":`, 400, metalapi.CodeInvalid, "JSON"},
		{"POST", "/api/v1/machines", ``, 400, metalapi.CodeInvalid, "empty body"},
		{"POST", "/api/v1/machines", `{"name":"m2","macs":["52:54:00:aa:00:02"]} {}`, 400, metalapi.CodeInvalid, "trailing"},
		{"POST", "/api/v1/machines", `{"name":"M1","macs":["52:54:00:aa:00:02"]}`, 400, metalapi.CodeInvalid, "name"},
		{"POST", "/api/v1/machines", `{"name":"m1","macs":["52:54:00:aa:00:02"]}`, 409, metalapi.CodeConflict, `machine "m1" already exists`},
		{"POST", "/api/v1/machines", `{"name":"m2","macs":["52:54:00:AA:00:01"]}`, 409, metalapi.CodeConflict, `machine "m1"`},
		{"GET", "/api/v1/machines/ghost", ``, 404, metalapi.CodeNotFound, `machine "ghost"`},
		{"PATCH", "/api/v1/machines/m1", `{"state":"provisioned","ip":"10.0.0.1"}`, 409, metalapi.CodeTransition, "new → provisioned"},
		{"PATCH", "/api/v1/machines/m1", `{"state":"flying"}`, 400, metalapi.CodeInvalid, `unknown state "flying"`},
		{"GET", "/api/v1/machines?state=flying", ``, 400, metalapi.CodeInvalid, "flying"},
		{"GET", "/api/v1/machines?tag=novalue", ``, 400, metalapi.CodeInvalid, "key=value"},
		{"GET", "/api/v1/events?since=-1", ``, 400, metalapi.CodeInvalid, "since"},
		{"GET", "/api/v1/events?wait=soon", ``, 400, metalapi.CodeInvalid, "wait"},
	}
	for _, c := range cases {
		status, e, b := f.call(t, c.method, c.path, c.body)
		if status != c.status || e.Code != c.code || !strings.Contains(e.Error, c.msg) {
			t.Errorf("%s %s %s: got %d %s, want %d %s containing %q", c.method, c.path, c.body, status, b, c.status, c.code, c.msg)
		}
	}
	// The refused PATCH changed nothing, not even the IP it carried.
	m, _ := f.store.GetMachine(context.Background(), "m1")
	if m.IP != "" || m.State != inventory.StateNew {
		t.Fatalf("refused patch changed the machine: %+v", m)
	}
}

func TestLongPollReturnsOnNewEvent(t *testing.T) {
	f := newFixture(t)
	done := make(chan []byte, 1)
	go func() {
		_, _, b := f.call(t, "GET", "/api/v1/events?since=0&type=test&wait=20s", "")
		done <- b
	}()
	f.store.AppendEvent(context.Background(), inventory.Event{Type: "other.thing"})
	f.store.AppendEvent(context.Background(), inventory.Event{Type: "test.ping", Message: "hello"})
	b := <-done
	var evs []metalapi.Event
	if err := json.Unmarshal(b, &evs); err != nil || len(evs) != 1 || evs[0].Message != "hello" {
		t.Fatalf("long poll answered %s (%v)", b, err)
	}
}
