package images

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// progressEvery is how often an import following its progress is told.
const progressEvery = 500 * time.Millisecond

// ociRoutes contributes, under /api/v1/images (g):
//
//	POST /images/{name}/import  ImageImport → 201 Image, or with
//	     Accept: application/x-ndjson 200 and ImportProgress lines
//	POST /images/{name}/export  ImageExport → 200 ImageExported
func (s *Service) ociRoutes(g gin.IRouter, fail func(*gin.Context, error)) {
	g.POST("/:name/"+metalapi.ActionImport, func(c *gin.Context) {
		var req metalapi.ImageImport
		if err := api.Decode(c, &req); err != nil {
			fail(c, err)
			return
		}
		name := c.Param("name")
		src, err := s.openImport(c.Request.Context(), name, req)
		if err != nil {
			fail(c, err)
			return
		}
		if !strings.Contains(c.GetHeader("Accept"), metalapi.MediaNDJSON) {
			img, err := s.ingestSource(c.Request.Context(), name, src)
			if err != nil {
				fail(c, err)
				return
			}
			c.JSON(http.StatusCreated, toImage(img))
			return
		}
		s.followImport(c, name, src)
	})
	g.POST("/:name/"+metalapi.ActionExport, func(c *gin.Context) {
		var req metalapi.ImageExport
		if err := api.Decode(c, &req); err != nil {
			fail(c, err)
			return
		}
		out, err := s.Export(c.Request.Context(), c.Param("name"), req)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, out)
	})
}

// followImport ingests src while telling the client how far the pull is,
// one ImportProgress line every progressEvery, the last one with the
// image or the error.
func (s *Service) followImport(c *gin.Context, name string, src *source) {
	c.Header("Content-Type", metalapi.MediaNDJSON)
	c.Header("Cache-Control", "no-cache")
	c.Status(http.StatusOK)
	enc := json.NewEncoder(c.Writer)
	send := func(p metalapi.ImportProgress) {
		_ = enc.Encode(p) // a client gone is noticed by the request's context
		c.Writer.Flush()
	}
	send(metalapi.ImportProgress{Source: src.desc, Total: src.total})
	type result struct {
		img inventory.Image
		err error
	}
	done := make(chan result, 1)
	go func() {
		img, err := s.ingestSource(c.Request.Context(), name, src)
		done <- result{img, err}
	}()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			send(metalapi.ImportProgress{Done: src.done(), Total: src.total})
		case r := <-done:
			last := metalapi.ImportProgress{Done: src.done(), Total: src.total}
			if r.err != nil {
				status, code := api.StatusOf(r.err)
				msg := r.err.Error()
				if status == http.StatusInternalServerError {
					s.log.Error("image import failed", "image", name, "err", r.err)
					msg = "internal error: see metald's log"
				}
				msg = strings.Replace(strings.Replace(msg, "invalid: ", "", 1), "not found: ", "", 1)
				last.Error = &metalapi.Error{Error: msg, Code: code}
			} else {
				img := toImage(r.img)
				last.Image = &img
			}
			send(last)
			return
		}
	}
}
