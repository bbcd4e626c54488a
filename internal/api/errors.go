package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/agentapi"
	"github.com/metal-iaas/metal/pkg/inventory"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// StatusOf maps an error to its HTTP status and metalapi error code. It
// is the one map from the inventory's and the services' sentinel errors to
// HTTP: every route under /api/v1 answers through it (Server.Fail), and
// /agent/v1 takes its status from it.
func StatusOf(err error) (status int, code string) {
	switch {
	case errors.Is(err, inventory.ErrInvalid), errors.Is(err, errBadRequest), errors.Is(err, agentapi.ErrInvalid):
		return http.StatusBadRequest, metalapi.CodeInvalid
	case errors.Is(err, inventory.ErrNotFound):
		return http.StatusNotFound, metalapi.CodeNotFound
	case errors.Is(err, inventory.ErrInvalidTransition):
		return http.StatusConflict, metalapi.CodeTransition
	case errors.Is(err, inventory.ErrConflict):
		return http.StatusConflict, metalapi.CodeConflict
	case errors.Is(err, inventory.ErrUnauthorized):
		return http.StatusUnauthorized, metalapi.CodeUnauthorized
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable, metalapi.CodeUnavailable
	}
	return http.StatusInternalServerError, metalapi.CodeInternal
}

var (
	errBadRequest  = errors.New("bad request")
	errUnavailable = errors.New("unavailable")
)

// abort writes err as a JSON error and stops the handler chain. Internal
// errors are logged once here and shown to the client without detail.
func (s *Server) abort(c *gin.Context, err error) {
	status, code := StatusOf(err)
	msg := cleanMessage(err)
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.FullPath(), "err", err)
		msg = "internal error: see metald's log"
	}
	c.AbortWithStatusJSON(status, metalapi.Error{Error: msg, Code: code})
}

// cleanMessage drops the sentinel prefixes ("invalid: ") that only repeat
// what the status code says.
func cleanMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"invalid: ", "bad request: ", "conflict: ", "not found: "} {
		msg = strings.Replace(msg, p, "", 1)
	}
	return msg
}

// maxBody bounds JSON request bodies.
const maxBody = 1 << 20

// Decode reads a JSON request body strictly, for packages that contribute
// routes; see decode.
func Decode(c *gin.Context, v any) error { return decode(c, v) }

// decode reads a JSON body strictly: unknown fields, trailing data and
// type mismatches are errors naming the field.
func decode(c *gin.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%w: read body: %v", errBadRequest, err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("%w: body larger than %d bytes", errBadRequest, maxBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body: a JSON object is required", errBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("%w: field %q: expected %s, got %s", errBadRequest, te.Field, te.Type, te.Value)
		case errors.As(err, &se):
			return fmt.Errorf("%w: malformed JSON at byte %d: %v", errBadRequest, se.Offset, se)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%w: malformed JSON: the object ends too early", errBadRequest)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("%w: unknown field %s", errBadRequest, strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", errBadRequest)
	}
	return nil
}
