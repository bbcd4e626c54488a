package redfish

import (
	"context"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
)

// memSystems is an in-memory Systems; power comes from powerOf when set.
type memSystems struct {
	mu      sync.Mutex
	m       map[string]System
	powerOf func(ctx context.Context, name string) string
	bootOf  func(name string) (BootOverride, bool)
}

func (f *memSystems) ListSystems(ctx context.Context) ([]System, error) {
	f.mu.Lock()
	var out []System
	for _, s := range f.m {
		out = append(out, s)
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *memSystems) GetSystem(ctx context.Context, name string) (System, error) {
	f.mu.Lock()
	s, ok := f.m[name]
	f.mu.Unlock()
	if !ok {
		return System{}, ErrNotFound
	}
	if f.powerOf != nil {
		s.PowerState = f.powerOf(ctx, name)
	}
	if f.bootOf != nil {
		if b, ok := f.bootOf(name); ok {
			s.Boot = b
		}
	}
	return s, nil
}

// recController records actions.
type recController struct {
	mu      sync.Mutex
	resets  []string
	boots   []BootOverride
	failFor string
}

func (c *recController) Reset(ctx context.Context, name, rt string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == c.failFor {
		return context.DeadlineExceeded
	}
	c.resets = append(c.resets, name+":"+rt)
	return nil
}

func (c *recController) SetBoot(ctx context.Context, name, target, enabled, mode string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.boots = append(c.boots, BootOverride{target, enabled, mode})
	return nil
}

// staticAuth accepts one user and one API token; the user's credential
// ("user:<name>") is revoked once it is in revoked.
type staticAuth struct {
	user, pass, token string
	revoked           *sync.Map
}

func (a staticAuth) ValidToken(_ context.Context, t string) bool { return t == a.token }
func (a staticAuth) CheckPassword(ctx context.Context, u, p string) (string, bool) {
	if u != a.user || p != a.pass || !a.CredentialValid(ctx, "user:"+u) {
		return "", false
	}
	return "user:" + u, true
}
func (a staticAuth) CredentialValid(_ context.Context, cred string) bool {
	if a.revoked == nil {
		return true
	}
	_, gone := a.revoked.Load(cred)
	return !gone
}

func testSystems() *memSystems {
	return &memSystems{m: map[string]System{
		"rack1-07": {Name: "rack1-07", UUID: "4c4c4544-0037-4810-8051-b4c04f4e4232", Serial: "SN0007", MACs: []string{"52:54:00:12:34:07", "52:54:00:12:35:07"},
			PowerState: "on", CPUModel: "Intel Xeon Gold 6338", CPUCount: 2, CPUCores: 64, MemoryGiB: 256,
			Boot: BootOverride{Target: "Pxe", Enabled: "Once", Mode: "UEFI"}},
		"node 2": {Name: "node 2", PowerState: "off"},
	}}
}

// serve mounts the service on a gin engine, the way metald does.
func serve(t *testing.T, sys Systems, ctl Controller, auth Auth) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	New(Config{}, sys, ctl, auth, nil).Routes(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}
