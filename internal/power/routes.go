package power

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// Routes contributes /api/v1/power, /api/v1/bootdev and
// /api/v1/machines/{name}/verify-bmc, in pkg/metalapi's types. Operations
// answer 200 with a result per machine even when some failed; the caller
// decides the exit code.
func (s *Service) Routes(r gin.IRouter, auth gin.HandlerFunc, fail func(*gin.Context, error)) {
	g := r.Group(metalapi.PathPrefix, auth)
	g.POST("/power", func(c *gin.Context) {
		var req metalapi.PowerRequest
		if err := api.Decode(c, &req); err != nil {
			fail(c, err)
			return
		}
		res, err := s.Power(c.Request.Context(), fromSelector(req.Selector), req.Action)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, toResults(res))
	})
	g.POST("/bootdev", func(c *gin.Context) {
		var req metalapi.BootRequest
		if err := api.Decode(c, &req); err != nil {
			fail(c, err)
			return
		}
		res, err := s.BootDevice(c.Request.Context(), fromSelector(req.Selector), req.Device, req.Persistent, req.EFI)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, toResults(res))
	})
	g.POST("/machines/:name/"+metalapi.ActionVerifyBMC, func(c *gin.Context) {
		name := c.Param("name")
		if _, err := s.store.GetMachine(c.Request.Context(), name); err != nil {
			fail(c, err)
			return
		}
		res := metalapi.VerifyResult{Machine: name, OK: true}
		if err := s.Verify(c.Request.Context(), name); err != nil {
			res.OK, res.Error = false, err.Error()
		}
		c.JSON(http.StatusOK, res)
	})
}
