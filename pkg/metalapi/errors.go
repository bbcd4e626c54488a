package metalapi

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error codes, stable for scripts. Each goes with one HTTP status.
const (
	CodeInvalid      = "invalid"            // 400
	CodeNotFound     = "not_found"          // 404
	CodeConflict     = "conflict"           // 409
	CodeTransition   = "invalid_transition" // 409: the lifecycle forbids the change
	CodeUnauthorized = "unauthorized"       // 401
	CodeInternal     = "internal"           // 500: the detail is in metald's log
	CodeUnavailable  = "unavailable"        // 503
)

// Codes lists every error code.
var Codes = []string{CodeInvalid, CodeNotFound, CodeConflict, CodeTransition, CodeUnauthorized, CodeInternal, CodeUnavailable}
