package power

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
)

// PowerRequest is the body of POST /api/v1/power.
type PowerRequest struct {
	Selector
	Action string `json:"action"`
}

// BootRequest is the body of POST /api/v1/bootdev.
type BootRequest struct {
	Selector
	Device     string `json:"device"`
	Persistent bool   `json:"persistent,omitempty"`
	EFI        bool   `json:"efi,omitempty"`
}

// VerifyResult is the answer of POST /api/v1/machines/{name}/verify-bmc.
type VerifyResult struct {
	Machine string `json:"machine"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// Routes contributes /api/v1/power, /api/v1/bootdev and
// /api/v1/machines/{name}/verify-bmc. Operations answer 200 with a result
// per machine even when some failed; the caller decides the exit code.
func (s *Service) Routes(r gin.IRouter, auth gin.HandlerFunc, fail func(*gin.Context, error)) {
	g := r.Group("/api/v1", auth)
	g.POST("/power", func(c *gin.Context) {
		var req PowerRequest
		if err := api.Decode(c, &req); err != nil {
			fail(c, err)
			return
		}
		res, err := s.Power(c.Request.Context(), req.Selector, req.Action)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, res)
	})
	g.POST("/bootdev", func(c *gin.Context) {
		var req BootRequest
		if err := api.Decode(c, &req); err != nil {
			fail(c, err)
			return
		}
		res, err := s.BootDevice(c.Request.Context(), req.Selector, req.Device, req.Persistent, req.EFI)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, res)
	})
	g.POST("/machines/:name/verify-bmc", func(c *gin.Context) {
		name := c.Param("name")
		if _, err := s.store.GetMachine(c.Request.Context(), name); err != nil {
			fail(c, err)
			return
		}
		res := VerifyResult{Machine: name, OK: true}
		if err := s.Verify(c.Request.Context(), name); err != nil {
			res.OK, res.Error = false, err.Error()
		}
		c.JSON(http.StatusOK, res)
	})
}
