// Package dashboard serves metald's web dashboard at /: one static page
// that talks to the REST API with the operator's token (kept in the
// browser's local storage) and shows machines, running jobs with their
// progress, and the event stream. The page, its script and its style sheet
// are separate files so that the Content-Security-Policy allows no inline
// script or style at all.
package dashboard

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

var (
	//go:embed index.html
	page []byte
	//go:embed dashboard.js
	script []byte
	//go:embed dashboard.css
	style []byte
)

// CSP is the dashboard's Content-Security-Policy: its own script, style
// sheet and API only, never framed, no inline code.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Routes contributes GET / (and /ui for a bookmark that survives a proxy
// prefix), /dashboard.js and /dashboard.css.
func Routes(r gin.IRouter) {
	file := func(ctype string, body []byte) gin.HandlerFunc {
		return func(c *gin.Context) {
			h := c.Writer.Header()
			h.Set("Cache-Control", "no-cache")
			h.Set("Content-Security-Policy", CSP)
			h.Set("X-Frame-Options", "DENY")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			c.Data(http.StatusOK, ctype, body)
		}
	}
	serve := file("text/html; charset=utf-8", page)
	r.GET("/", serve)
	r.GET("/ui", serve)
	r.GET("/dashboard.js", file("text/javascript; charset=utf-8", script))
	r.GET("/dashboard.css", file("text/css; charset=utf-8", style))
}
