package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.json
var openapiDoc []byte

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte { return openapiDoc }

func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openapiDoc)
}
