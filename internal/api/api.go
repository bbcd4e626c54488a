// Package api is metald's REST API under /api/v1: machines, events, leases
// and the OpenAPI document, with bearer-token authentication, strict JSON
// decoding and JSON errors of the form {"error": "...", "code": "..."}
// (StatusOf, the one map of errors to HTTP). What goes over the wire is
// pkg/metalapi's; convert.go turns inventory records into it.
package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// Server serves the REST API from a Store.
type Server struct {
	store inventory.Store
	log   *slog.Logger
}

// New returns an API server over store.
func New(store inventory.Store, log *slog.Logger) *Server {
	return &Server{store: store, log: log}
}

// Routes contributes the API's routes. The OpenAPI document is public;
// everything else needs a bearer token.
func (s *Server) Routes(r gin.IRouter) {
	r.GET("/api/v1/openapi.json", serveOpenAPI)
	v1 := r.Group("/api/v1", s.auth)
	v1.GET("/machines", s.listMachines)
	v1.POST("/machines", s.createMachine)
	v1.GET("/machines/:name", s.getMachine)
	v1.PATCH("/machines/:name", s.patchMachine)
	v1.DELETE("/machines/:name", s.deleteMachine)
	v1.GET("/events", s.listEvents)
	v1.GET("/leases", s.listLeases)
}

// Fail writes err as a JSON error with the status its sentinel implies,
// for packages that contribute routes.
func (s *Server) Fail(c *gin.Context, err error) { s.abort(c, err) }

// Auth is the bearer-token middleware, for packages that contribute
// authenticated routes under /api/v1.
func (s *Server) Auth() gin.HandlerFunc { return s.auth }

// auth checks the bearer token.
func (s *Server) auth(c *gin.Context) {
	h := c.GetHeader("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		c.Header("WWW-Authenticate", `Bearer realm="metald"`)
		c.AbortWithStatusJSON(http.StatusUnauthorized, metalapi.Error{
			Error: "missing bearer token: pass --token or set METALCTL_TOKEN (create one with `metald token create`)",
			Code:  metalapi.CodeUnauthorized})
		return
	}
	tok, err := s.store.CheckToken(c.Request.Context(), strings.TrimSpace(secret))
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="metald", error="invalid_token"`)
		c.AbortWithStatusJSON(http.StatusUnauthorized, metalapi.Error{Error: "invalid or revoked token", Code: metalapi.CodeUnauthorized})
		return
	}
	c.Set("token", tok.ID)
	c.Next()
}

func (s *Server) listLeases(c *gin.Context) {
	ls, err := s.store.ListLeases(c.Request.Context())
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, toLeases(ls))
}
