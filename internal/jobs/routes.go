package jobs

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// Routes contributes the job API under /api/v1 (with auth), in
// pkg/metalapi's types:
//
//	POST /machines/{name}/provision   ProvisionRequest → 202 Job
//	POST /machines/{name}/inspect     → 202 Job
//	POST /machines/{name}/deprovision → 202 Job
//	GET  /jobs?machine=&active=true   → []Job, newest first
//	GET  /jobs/{id}                   → Job
func (s *Service) Routes(r gin.IRouter, auth gin.HandlerFunc, fail func(*gin.Context, error)) {
	g := r.Group("/api/v1", auth)
	g.POST("/machines/:name/provision", func(c *gin.Context) {
		var req metalapi.ProvisionRequest
		if err := api.Decode(c, &req); err != nil {
			fail(c, err)
			return
		}
		j, err := s.Provision(c.Request.Context(), c.Param("name"), fromProvisionRequest(req))
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusAccepted, toJob(j))
	})
	g.POST("/machines/:name/inspect", func(c *gin.Context) {
		j, err := s.Inspect(c.Request.Context(), c.Param("name"))
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusAccepted, toJob(j))
	})
	g.POST("/machines/:name/deprovision", func(c *gin.Context) {
		j, err := s.Deprovision(c.Request.Context(), c.Param("name"))
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusAccepted, toJob(j))
	})
	g.GET("/jobs", func(c *gin.Context) {
		limit := 0
		if v := c.Query("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				fail(c, fmt.Errorf("%w: limit %q: want a positive integer", inventory.ErrInvalid, v))
				return
			}
			limit = n
		}
		js, err := s.store.ListJobs(c.Request.Context(), c.Query("machine"), c.Query("active") == "true", limit)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, toJobs(js))
	})
	g.GET("/jobs/:id", func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil {
			fail(c, fmt.Errorf("%w: job id %q", inventory.ErrInvalid, c.Param("id")))
			return
		}
		j, err := s.store.GetJob(c.Request.Context(), id)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, toJob(j))
	})
}
