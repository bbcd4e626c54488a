// Package dashboard serves metald's web dashboard at /: one static page
// that talks to the REST API with the operator's token (kept in the
// browser's local storage) and shows machines, running jobs with their
// progress, and the event stream.
package dashboard

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed index.html
var page []byte

// Routes contributes GET / (and /ui for a bookmark that survives a proxy
// prefix).
func Routes(r gin.IRouter) {
	serve := func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
		c.Data(http.StatusOK, "text/html; charset=utf-8", page)
	}
	r.GET("/", serve)
	r.GET("/ui", serve)
}
