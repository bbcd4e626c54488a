package bmcsim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures one emulated Redfish BMC.
type Config struct {
	User, Password string
	// UUID and Serial of the emulated system (generated when empty).
	UUID, Serial string
	// PoweredOn is the initial power state.
	PoweredOn bool
	// Hook, when set, is called on every power transition.
	Hook PowerHook
	// Latency is added to every response, to model a real BMC (whose
	// Redfish answers take tens to hundreds of milliseconds).
	Latency time.Duration
}

// BMC is an emulated Redfish BMC: an http.Handler serving /redfish/v1
// with one ComputerSystem (Systems/1) and one Manager (Managers/1) with a
// virtual CD. It accepts HTTP Basic auth and X-Auth-Token sessions.
type BMC struct {
	cfg      Config
	st       state
	mux      *http.ServeMux
	requests atomic.Int64
	resumed  atomic.Int64

	smu      sync.Mutex
	sessions map[string]string // id -> token
	nextSess int
}

// NewBMC returns an emulated BMC; serve it with Start or any http.Server.
func NewBMC(cfg Config) *BMC {
	if cfg.UUID == "" {
		cfg.UUID = newUUID()
	}
	if cfg.Serial == "" {
		cfg.Serial = "SIM-" + cfg.UUID[:8]
	}
	b := &BMC{cfg: cfg, sessions: map[string]string{}}
	b.st.power = cfg.PoweredOn
	b.st.hook = cfg.Hook
	b.st.boot = Boot{Target: "None", Enabled: "Disabled", Mode: "UEFI"}
	b.routes()
	return b
}

// Power reports the emulated power state.
func (b *BMC) Power() bool { b.st.mu.Lock(); defer b.st.mu.Unlock(); return b.st.power }

// SetPower sets the power state without calling the hook.
func (b *BMC) SetPower(on bool) { b.st.mu.Lock(); b.st.power = on; b.st.mu.Unlock() }

// Boot reports the boot override.
func (b *BMC) Boot() Boot { b.st.mu.Lock(); defer b.st.mu.Unlock(); return b.st.boot }

// Media reports the virtual CD.
func (b *BMC) Media() Media { b.st.mu.Lock(); defer b.st.mu.Unlock(); return b.st.media }

// Resets lists the reset types performed so far.
func (b *BMC) Resets() []string {
	b.st.mu.Lock()
	defer b.st.mu.Unlock()
	return slices.Clone(b.st.resets)
}

// AppliedBoots lists the boot override in force at each power-on.
func (b *BMC) AppliedBoots() []Boot {
	b.st.mu.Lock()
	defer b.st.mu.Unlock()
	return slices.Clone(b.st.applied)
}

// Requests is the number of HTTP requests served.
func (b *BMC) Requests() int64 { return b.requests.Load() }

// TLSResumed is the number of requests that arrived on a resumed TLS
// session.
func (b *BMC) TLSResumed() int64 { return b.resumed.Load() }

// Sessions is the number of open sessions.
func (b *BMC) Sessions() int { b.smu.Lock(); defer b.smu.Unlock(); return len(b.sessions) }

// Server is a running BMC.
type Server struct {
	*BMC
	srv *httptest.Server
	// URL is the base URL (https://127.0.0.1:PORT or http://...).
	URL string
	// Host and Port of the listener.
	Host string
	Port int
}

// Start serves the BMC on 127.0.0.1 at a random port, over TLS (a
// self-signed certificate) or plain HTTP.
func (b *BMC) Start(useTLS bool) *Server {
	srv := httptest.NewUnstartedServer(b)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake noise from verifying clients
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s := &Server{BMC: b, srv: srv, URL: srv.URL}
	addr := srv.Listener.Addr().String()
	i := strings.LastIndex(addr, ":")
	s.Host = addr[:i]
	fmt.Sscanf(addr[i+1:], "%d", &s.Port)
	return s
}

// BMCURL is the pkg/bmc URL of this server (redfish://…?insecure=1 for
// TLS, redfish+http://… otherwise).
func (s *Server) BMCURL() string {
	if strings.HasPrefix(s.URL, "https") {
		return fmt.Sprintf("redfish://%s:%s@%s:%d?insecure=1", s.cfg.User, s.cfg.Password, s.Host, s.Port)
	}
	return fmt.Sprintf("redfish+http://%s:%s@%s:%d", s.cfg.User, s.cfg.Password, s.Host, s.Port)
}

// Close stops the server.
func (s *Server) Close() { s.srv.CloseClientConnections(); s.srv.Close() }

func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newToken() string {
	var t [16]byte
	_, _ = rand.Read(t[:])
	return hex.EncodeToString(t[:])
}

// ServeHTTP serves the Redfish tree.
func (b *BMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	if r.TLS != nil && r.TLS.DidResume {
		b.resumed.Add(1)
	}
	if b.cfg.Latency > 0 {
		t := time.NewTimer(b.cfg.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r.URL.Path = strings.TrimRight(p, "/")
	}
	public := r.URL.Path == "/redfish" || r.URL.Path == "/redfish/v1" || r.URL.Path == "/redfish/v1/odata" ||
		(r.Method == http.MethodPost && r.URL.Path == "/redfish/v1/SessionService/Sessions")
	if !public && !b.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="bmcsim"`)
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "authentication required")
		return
	}
	b.mux.ServeHTTP(w, r)
}

func (b *BMC) authorized(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		b.smu.Lock()
		defer b.smu.Unlock()
		for _, t := range b.sessions {
			if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
				return true
			}
		}
		return false
	}
	u, p, ok := r.BasicAuth()
	return ok && b.credentialsOK(u, p)
}

func (b *BMC) credentialsOK(u, p string) bool {
	return subtle.ConstantTimeCompare([]byte(u), []byte(b.cfg.User)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(b.cfg.Password)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msgID, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code":    "Base.1.8.GeneralError",
		"message": msg,
		"@Message.ExtendedInfo": []map[string]any{{
			"@odata.type": "#Message.v1_1_1.Message",
			"MessageId":   msgID,
			"Message":     msg,
			"Severity":    "Warning",
		}},
	}})
}
