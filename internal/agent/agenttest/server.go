// Package agenttest is a faithful in-memory double of metald's side of the
// agent API (pkg/agentapi) for tests: it validates requests like the real
// server must (version, MAC, bearer token bound to the task, single use),
// hands out queued tasks, and records everything it receives.
package agenttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/metal-iaas/metal/pkg/agentapi"
)

// Server implements the /agent/v1 routes.
type Server struct {
	// Machine is the name returned in assignments.
	Machine string
	// PollIntervalSeconds is put in every assignment.
	PollIntervalSeconds int

	mu          sync.Mutex
	queue       []agentapi.Task // pending, handed out one at a time
	current     *agentapi.Task  // handed out, no result yet
	used        map[string]bool // tokens whose result was accepted
	regs        []agentapi.RegisterRequest
	progress    []agentapi.Progress
	results     []agentapi.Result
	inventories []agentapi.InventoryReport
	changed     chan struct{}
	// Unavailable makes every request fail with 503 (metald restarting).
	unavailable bool
	refused     map[string]int // path → requests answered 503
}

// New returns an empty server.
func New(machine string) *Server {
	return &Server{Machine: machine, PollIntervalSeconds: 1, used: map[string]bool{}, refused: map[string]int{}, changed: make(chan struct{})}
}

// Changed returns a channel closed at the next recorded request.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Queue adds a task for the machine.
func (s *Server) Queue(t agentapi.Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, t)
}

// SetUnavailable makes the server answer 503 to everything while on.
func (s *Server) SetUnavailable(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailable = on
}

// Registrations, ProgressReports and Results return copies of what was
// received.
func (s *Server) Registrations() []agentapi.RegisterRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agentapi.RegisterRequest(nil), s.regs...)
}

func (s *Server) ProgressReports() []agentapi.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agentapi.Progress(nil), s.progress...)
}

func (s *Server) Results() []agentapi.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agentapi.Result(nil), s.results...)
}

// Refused returns how many requests for path were answered 503 while the
// server was unavailable.
func (s *Server) Refused(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[path]
}

// ServeHTTP routes the agent API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.unavailable
	if down {
		s.refused[r.URL.Path]++
		s.notify()
	}
	s.mu.Unlock()
	if down {
		fail(w, http.StatusServiceUnavailable, "metald restarting")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == agentapi.PathRegister:
		s.register(w, r)
	case r.Method == http.MethodGet && r.URL.Path == agentapi.PathTask:
		s.poll(w, r)
	case r.Method == http.MethodPost && r.URL.Path == agentapi.PathProgress:
		s.progressHandler(w, r)
	case r.Method == http.MethodPost && r.URL.Path == agentapi.PathResult:
		s.result(w, r)
	case r.Method == http.MethodPost && r.URL.Path == agentapi.PathInventory:
		s.inventory(w, r)
	default:
		fail(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	}
}

func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(agentapi.Error{Error: msg})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "decode body: "+err.Error())
		return false
	}
	return true
}

// assignment hands out the current task, or the next queued one. Caller
// holds mu.
func (s *Server) assignment() agentapi.Assignment {
	if s.current == nil && len(s.queue) > 0 {
		t := s.queue[0]
		s.queue = s.queue[1:]
		s.current = &t
	}
	a := agentapi.Assignment{Version: agentapi.Version, Machine: s.Machine, PollIntervalSeconds: s.PollIntervalSeconds}
	if s.current != nil {
		t := *s.current
		a.Task = &t
	}
	return a
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RegisterRequest
	if !decode(w, r, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regs = append(s.regs, req)
	a := s.assignment()
	s.notify()
	reply(w, a)
}

func (s *Server) poll(w http.ResponseWriter, r *http.Request) {
	if _, err := agentapi.NormalizeMAC(r.URL.Query().Get(agentapi.QueryMAC)); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	reply(w, s.assignment())
}

// authorize checks the bearer token against the current task. Caller
// holds mu.
func (s *Server) authorize(r *http.Request, taskID string) (int, string) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || tok == "":
		return http.StatusUnauthorized, "missing bearer token"
	case s.used[tok]:
		return http.StatusUnauthorized, "task token already used"
	case s.current == nil || s.current.Token != tok:
		return http.StatusUnauthorized, "token does not belong to a running task of this machine"
	case s.current.ID != taskID:
		return http.StatusForbidden, fmt.Sprintf("token is for task %s, not %s", s.current.ID, taskID)
	}
	return 0, ""
}

func (s *Server) progressHandler(w http.ResponseWriter, r *http.Request) {
	var p agentapi.Progress
	if !decode(w, r, &p) {
		return
	}
	if err := p.Validate(); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, msg := s.authorize(r, p.TaskID); code != 0 {
		fail(w, code, msg)
		return
	}
	s.progress = append(s.progress, p)
	s.notify()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) inventory(w http.ResponseWriter, r *http.Request) {
	var rep agentapi.InventoryReport
	if !decode(w, r, &rep) {
		return
	}
	if err := rep.Validate(); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, msg := s.authorize(r, rep.TaskID); code != 0 {
		fail(w, code, msg)
		return
	}
	s.inventories = append(s.inventories, rep)
	s.notify()
	w.WriteHeader(http.StatusNoContent)
}

// Inventories returns the inventory reports received so far.
func (s *Server) Inventories() []agentapi.InventoryReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]agentapi.InventoryReport(nil), s.inventories...)
}

func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	var res agentapi.Result
	if !decode(w, r, &res) {
		return
	}
	if err := res.Validate(); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, msg := s.authorize(r, res.TaskID); code != 0 {
		fail(w, code, msg)
		return
	}
	s.used[s.current.Token] = true
	s.current = nil
	s.results = append(s.results, res)
	s.notify()
	reply(w, agentapi.ResultResponse{})
}
