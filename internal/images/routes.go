package images

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// Routes contributes the image API under /api/v1 (with auth), in
// pkg/metalapi's types:
//
//	GET    /images                      → []Image
//	GET    /images/{name}               → Image
//	PUT    /images/{name}[?replace=true] (the image's bytes) → 201 Image
//	DELETE /images/{name}               → 204
//
// and the registry import and export (oci_routes.go).
func (s *Service) Routes(r gin.IRouter, auth gin.HandlerFunc, fail func(*gin.Context, error)) {
	g := r.Group(metalapi.PathImages, auth)
	g.GET("", func(c *gin.Context) {
		imgs, err := s.List(c.Request.Context())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, toImages(imgs))
	})
	g.GET("/:name", func(c *gin.Context) {
		img, err := s.Image(c.Request.Context(), c.Param("name"))
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, toImage(img))
	})
	g.PUT("/:name", func(c *gin.Context) {
		name := c.Param("name")
		if _, err := s.Image(c.Request.Context(), name); err == nil && c.Query(metalapi.QueryReplace) != "true" {
			fail(c, fmt.Errorf("%w: image %q already exists (upload with replace=true to overwrite)", inventory.ErrConflict, name))
			return
		}
		img, err := s.Ingest(c.Request.Context(), name, c.Request.Body)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusCreated, toImage(img))
	})
	g.DELETE("/:name", func(c *gin.Context) {
		if err := s.Delete(c.Request.Context(), c.Param("name")); err != nil {
			fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	})
	s.ociRoutes(g, fail)
}
