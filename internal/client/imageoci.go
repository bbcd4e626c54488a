package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/metal-iaas/metal/pkg/metalapi"
)

// ImportImage asks metald to pull req.Ref and store it as name, and
// follows the pull: progress (when set) is called with each progress
// line metald sends (the first one names the source).
func (c *Client) ImportImage(ctx context.Context, name string, req metalapi.ImageImport, progress func(metalapi.ImportProgress)) (metalapi.Image, error) {
	path := metalapi.ImageActionPath(name, metalapi.ActionImport)
	b, err := json.Marshal(req)
	if err != nil {
		return metalapi.Image{}, err
	}
	u := *c.base
	u.Path += path
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return metalapi.Image{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", metalapi.MediaNDJSON)
	if c.token != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return metalapi.Image{}, fmt.Errorf("cannot reach metald at %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return metalapi.Image{}, readAPIError(resp, "import")
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var p metalapi.ImportProgress
		if err := json.Unmarshal(line, &p); err != nil {
			return metalapi.Image{}, fmt.Errorf("import progress: %w", err)
		}
		switch {
		case p.Error != nil:
			return metalapi.Image{}, &APIError{Status: statusOfCode(p.Error.Code), Code: p.Error.Code, Message: p.Error.Error}
		case p.Image != nil:
			return *p.Image, nil
		case progress != nil:
			progress(p)
		}
	}
	if err := sc.Err(); err != nil {
		return metalapi.Image{}, fmt.Errorf("import progress: %w", err)
	}
	return metalapi.Image{}, errors.New("import: metald ended the progress stream without a result")
}

// ExportImage asks metald to push image name to req.Ref.
func (c *Client) ExportImage(ctx context.Context, name string, req metalapi.ImageExport) (metalapi.ImageExported, error) {
	var out metalapi.ImageExported
	return out, c.do(ctx, http.MethodPost, metalapi.ImageActionPath(name, metalapi.ActionExport), nil, req, &out)
}

// readAPIError reads metald's error body.
func readAPIError(resp *http.Response, what string) error {
	var e metalapi.Error
	if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
		return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
	}
	return &APIError{Status: resp.StatusCode, Message: what + ": " + resp.Status}
}

// statusOfCode is the HTTP status that goes with an error code.
func statusOfCode(code string) int {
	switch code {
	case metalapi.CodeInvalid:
		return http.StatusBadRequest
	case metalapi.CodeNotFound:
		return http.StatusNotFound
	case metalapi.CodeConflict, metalapi.CodeTransition:
		return http.StatusConflict
	case metalapi.CodeUnauthorized:
		return http.StatusUnauthorized
	case metalapi.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
