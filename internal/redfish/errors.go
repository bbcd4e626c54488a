package redfish

import (
	"encoding/json"
	"net/http"
)

// Message IDs from the DMTF Base message registry.
const (
	registry                  = "Base.1.8."
	msgGeneralError           = registry + "GeneralError"
	msgMalformedJSON          = registry + "MalformedJSON"
	msgNoValidSession         = registry + "NoValidSession"
	msgResourceMissingAtURI   = registry + "ResourceMissingAtURI"
	msgResourceNotFound       = registry + "ResourceNotFound"
	msgOperationNotAllowed    = registry + "OperationNotAllowed"
	msgActionParamNotSupp     = registry + "ActionParameterNotSupported"
	msgActionParamMissing     = registry + "ActionParameterMissing"
	msgPropertyUnknown        = registry + "PropertyUnknown"
	msgPropertyValueNotInList = registry + "PropertyValueNotInList"
	msgPropertyValueType      = registry + "PropertyValueTypeError"
	msgInternalError          = registry + "InternalError"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with a Redfish error body:
// {"error":{"code":…,"message":…,"@Message.ExtendedInfo":[…]}}.
func writeError(w http.ResponseWriter, code int, msgID, msg, resolution string) {
	info := map[string]any{
		"@odata.type": "#Message.v1_1_1.Message",
		"MessageId":   msgID,
		"Message":     msg,
		"Severity":    "Warning",
	}
	if code >= 500 {
		info["Severity"] = "Critical"
	}
	if resolution != "" {
		info["Resolution"] = resolution
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code":                  msgGeneralError,
		"message":               "A general error has occurred. See ExtendedInfo for more information.",
		"@Message.ExtendedInfo": []any{info},
	}})
}
