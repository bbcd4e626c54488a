package redfish

import (
	"context"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const v1 = "/redfish/v1"

// route is one resource: a path pattern of segments below /redfish/v1
// ("{}" matches one segment) and its handlers by method.
type route struct {
	pattern []string
	public  map[string]bool // methods allowed without authentication
	methods map[string]func(w http.ResponseWriter, r *http.Request, args []string)
}

type handlerFunc = func(w http.ResponseWriter, r *http.Request, args []string)

func (s *Service) routes() {
	s.table = []route{
		{pattern: nil, public: map[string]bool{"GET": true}, methods: map[string]handlerFunc{"GET": s.serviceRoot}},
		{pattern: []string{"odata"}, public: map[string]bool{"GET": true}, methods: map[string]handlerFunc{"GET": s.odataDoc}},
		{pattern: []string{"Systems"}, methods: map[string]handlerFunc{"GET": s.listSystems}},
		{pattern: []string{"Systems", "{}"}, methods: map[string]handlerFunc{"GET": s.getSystem, "PATCH": s.patchSystem}},
		{pattern: []string{"Systems", "{}", "EthernetInterfaces"}, methods: map[string]handlerFunc{"GET": s.listNICs}},
		{pattern: []string{"Systems", "{}", "EthernetInterfaces", "{}"}, methods: map[string]handlerFunc{"GET": s.getNIC}},
		{pattern: []string{"Systems", "{}", "ResetActionInfo"}, methods: map[string]handlerFunc{"GET": s.resetActionInfo}},
		{pattern: []string{"Systems", "{}", "Actions", "ComputerSystem.Reset"}, methods: map[string]handlerFunc{"POST": s.reset}},
		{pattern: []string{"SessionService"}, methods: map[string]handlerFunc{"GET": s.sessionService}},
		{pattern: []string{"SessionService", "Sessions"}, public: map[string]bool{"POST": true}, methods: map[string]handlerFunc{"GET": s.listSessions, "POST": s.login}},
		{pattern: []string{"SessionService", "Sessions", "{}"}, methods: map[string]handlerFunc{"GET": s.getSession, "DELETE": s.logout}},
	}
}

// ServeHTTP serves /redfish and everything below /redfish/v1.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimRight(r.URL.EscapedPath(), "/")
	if p == "/redfish" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.notAllowed(w, []string{"GET"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"v1": v1 + "/"})
		return
	}
	if p != v1 && !strings.HasPrefix(p, v1+"/") {
		writeError(w, http.StatusNotFound, msgResourceMissingAtURI, "The resource at the URI "+r.URL.Path+" was not found.", "")
		return
	}
	var segs []string
	if rest := strings.TrimPrefix(p, v1); rest != "" {
		for _, raw := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
			seg, err := url.PathUnescape(raw)
			if err != nil || seg == "" {
				writeError(w, http.StatusNotFound, msgResourceMissingAtURI, "The resource at the URI "+r.URL.Path+" was not found.", "")
				return
			}
			segs = append(segs, seg)
		}
	}
	for _, rt := range s.table {
		args, ok := match(rt.pattern, segs)
		if !ok {
			continue
		}
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		h, ok := rt.methods[method]
		if !ok {
			var allow []string
			for m := range rt.methods {
				allow = append(allow, m)
			}
			s.notAllowed(w, allow)
			return
		}
		if !rt.public[method] && !s.authenticate(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="metal"`)
			writeError(w, http.StatusUnauthorized, msgNoValidSession, "There is no valid session established with the implementation.", "Log in with HTTP Basic authentication or create a session at "+v1+"/SessionService/Sessions.")
			return
		}
		if !jsonBody(r) {
			writeError(w, http.StatusUnsupportedMediaType, msgGeneralError,
				"The request body's media type "+strconv.Quote(r.Header.Get("Content-Type"))+" is not supported.",
				"Send the body as application/json.")
			return
		}
		h(w, r, args)
		return
	}
	writeError(w, http.StatusNotFound, msgResourceMissingAtURI, "The resource at the URI "+r.URL.Path+" was not found.", "")
}

// jsonBody reports whether r may carry its body to a handler: requests
// that change something (POST, PATCH, PUT) must say application/json, so
// that a cross-site form post (text/plain, form encodings, which browsers
// send without a preflight) can never reset a machine.
func jsonBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut:
	default:
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func match(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var args []string
	for i, p := range pattern {
		if p == "{}" {
			args = append(args, segs[i])
		} else if p != segs[i] {
			return nil, false
		}
	}
	return args, true
}

func (s *Service) notAllowed(w http.ResponseWriter, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, msgOperationNotAllowed, "The HTTP method is not allowed on this resource.", "Use one of: "+strings.Join(allow, ", "))
}

// authenticate accepts a session token, a metal API token as X-Auth-Token
// or as "Authorization: Bearer", or HTTP Basic credentials.
func (s *Service) authenticate(r *http.Request) bool {
	ctx := r.Context()
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		if se, ok := s.sessions.lookup(tok); ok {
			return s.sessionAlive(ctx, se)
		}
		return s.auth != nil && s.auth.ValidToken(ctx, tok)
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return s.auth != nil && s.auth.ValidToken(ctx, strings.TrimSpace(h[7:]))
	}
	if u, p, ok := r.BasicAuth(); ok && s.auth != nil {
		_, ok := s.auth.CheckPassword(ctx, u, p)
		return ok
	}
	return false
}

// sessionAlive reports whether a session's credential is still valid,
// asking the store on every use so that revoking a token ends its
// sessions at once; it ends every session of a dead credential.
func (s *Service) sessionAlive(ctx context.Context, se session) bool {
	if s.auth != nil && s.auth.CredentialValid(ctx, se.credential) {
		return true
	}
	if n := s.sessions.dropCredential(se.credential); n > 0 {
		s.log.Info("redfish sessions ended: their credential was revoked", "sessions", n, "user", se.user)
	}
	return false
}
