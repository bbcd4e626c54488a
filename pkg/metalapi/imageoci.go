package metalapi

// Actions on one image, under ImagePath(name).
const (
	ActionImport = "import"
	ActionExport = "export"
)

// ImageActionPath is the path of an action (ActionImport, ActionExport)
// on one image.
func ImageActionPath(name, action string) string { return ImagePath(name) + "/" + action }

// MediaNDJSON is what a client accepts to follow an import's progress.
const MediaNDJSON = "application/x-ndjson"

// ImageImport is the body of POST /api/v1/images/{name}/import: metald
// pulls Ref (oci://HOST[:PORT]/REPO:TAG, oci://HOST/REPO@sha256:…, or an
// https:// URL), decodes it end to end as an upload and stores it.
type ImageImport struct {
	Ref string `json:"ref"`
	// Platform picks an image index's entry (OS/ARCH[/VARIANT]); linux/amd64
	// when empty.
	Platform string `json:"platform,omitempty"`
	// Username and Password for the registry; without them metald's own
	// Docker-style auth file answers (REGISTRY_AUTH_FILE,
	// ~/.docker/config.json).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// PlainHTTP allows a registry (or URL) without TLS.
	PlainHTTP bool `json:"plain_http,omitempty"`
	// Replace overwrites an image of the same name.
	Replace bool `json:"replace,omitempty"`
}

// ImportProgress is one line of an import's NDJSON answer (when the
// request accepts MediaNDJSON): progress lines, then one line with Image
// or Error.
type ImportProgress struct {
	// Done and Total count the bytes pulled (Total is 0 when unknown).
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
	// Source says what is pulled (the resolved manifest and the disk
	// file), on the first line.
	Source string `json:"source,omitempty"`
	Image  *Image `json:"image,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// ImageExport is the body of POST /api/v1/images/{name}/export: metald
// pushes the stored image to Ref (oci://HOST[:PORT]/REPO:TAG) as an OCI
// artifact.
type ImageExport struct {
	Ref       string `json:"ref"`
	Username  string `json:"username,omitempty"`
	Password  string `json:"password,omitempty"`
	PlainHTTP bool   `json:"plain_http,omitempty"`
}

// ImageExported answers an export.
type ImageExported struct {
	// Ref is the reference pushed; Digest the manifest's.
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}
