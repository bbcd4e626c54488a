// Package client is the Go client of metald's REST API, used by metalctl
// and by tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/metal-iaas/metal/internal/api"
	"github.com/metal-iaas/metal/internal/jobs"
	"github.com/metal-iaas/metal/internal/power"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// Client talks to one metald.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// APIError is an error answered by metald.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// IsNotFound reports whether err is a 404 from metald.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// New returns a client for the metald at server (http://host:port).
func New(server, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want http://HOST:PORT", server)
	}
	return &Client{base: u, token: token, http: &http.Client{}}, nil
}

// do sends a request and decodes a JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	resp, err := c.send(ctx, method, path, query, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send performs a request and turns non-2xx answers into *APIError.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in any) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach metald at %s: %w", c.base, unwrapURLError(err))
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
		}
		return nil, &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
	}
	return resp, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// ListMachines lists machines, optionally filtered by state and tags.
func (c *Client) ListMachines(ctx context.Context, state string, tags []string) ([]api.Machine, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	for _, t := range tags {
		q.Add("tag", t)
	}
	var out []api.Machine
	return out, c.do(ctx, http.MethodGet, "/api/v1/machines", q, nil, &out)
}

// GetMachine returns one machine.
func (c *Client) GetMachine(ctx context.Context, name string) (api.Machine, error) {
	var out api.Machine
	return out, c.do(ctx, http.MethodGet, "/api/v1/machines/"+url.PathEscape(name), nil, nil, &out)
}

// CreateMachine enrols a machine.
func (c *Client) CreateMachine(ctx context.Context, m api.MachineCreate) (api.Machine, error) {
	var out api.Machine
	return out, c.do(ctx, http.MethodPost, "/api/v1/machines", nil, m, &out)
}

// PatchMachine changes a machine.
func (c *Client) PatchMachine(ctx context.Context, name string, p api.MachinePatch) (api.Machine, error) {
	var out api.Machine
	return out, c.do(ctx, http.MethodPatch, "/api/v1/machines/"+url.PathEscape(name), nil, p, &out)
}

// DeleteMachine removes a machine.
func (c *Client) DeleteMachine(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/machines/"+url.PathEscape(name), nil, nil, nil)
}

// ListLeases returns DHCP leases.
func (c *Client) ListLeases(ctx context.Context) ([]inventory.Lease, error) {
	var out []inventory.Lease
	return out, c.do(ctx, http.MethodGet, "/api/v1/leases", nil, nil, &out)
}

// ListImages returns the image library.
func (c *Client) ListImages(ctx context.Context) ([]inventory.Image, error) {
	var out []inventory.Image
	return out, c.do(ctx, http.MethodGet, "/api/v1/images", nil, nil, &out)
}

// GetImage returns one image.
func (c *Client) GetImage(ctx context.Context, name string) (inventory.Image, error) {
	var out inventory.Image
	return out, c.do(ctx, http.MethodGet, "/api/v1/images/"+url.PathEscape(name), nil, nil, &out)
}

// DeleteImage removes an image.
func (c *Client) DeleteImage(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/images/"+url.PathEscape(name), nil, nil, nil)
}

// UploadImage streams an image to metald, which inspects it before
// storing it.
func (c *Client) UploadImage(ctx context.Context, name string, body io.Reader, size int64, replace bool) (inventory.Image, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + "/api/v1/images/" + url.PathEscape(name)
	if replace {
		u.RawQuery = "replace=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return inventory.Image{}, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return inventory.Image{}, fmt.Errorf("upload to %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return inventory.Image{}, &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
		}
		return inventory.Image{}, &APIError{Status: resp.StatusCode, Message: "upload: " + resp.Status}
	}
	var img inventory.Image
	return img, json.NewDecoder(resp.Body).Decode(&img)
}

// Power runs a power action on machines selected by name, tag or all.
func (c *Client) Power(ctx context.Context, req power.PowerRequest) ([]power.Result, error) {
	var out []power.Result
	return out, c.do(ctx, http.MethodPost, "/api/v1/power", nil, req, &out)
}

// BootDevice sets the next boot device of machines.
func (c *Client) BootDevice(ctx context.Context, req power.BootRequest) ([]power.Result, error) {
	var out []power.Result
	return out, c.do(ctx, http.MethodPost, "/api/v1/bootdev", nil, req, &out)
}

// VerifyBMC asks metald to check a machine's BMC answers.
func (c *Client) VerifyBMC(ctx context.Context, name string) (power.VerifyResult, error) {
	var out power.VerifyResult
	return out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+url.PathEscape(name)+"/verify-bmc", nil, struct{}{}, &out)
}

// Provision starts provisioning a machine.
func (c *Client) Provision(ctx context.Context, machine string, req jobs.ProvisionRequest) (inventory.Job, error) {
	var out inventory.Job
	return out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+url.PathEscape(machine)+"/provision", nil, req, &out)
}

// StartJob starts an inspect or deprovision job.
func (c *Client) StartJob(ctx context.Context, machine, kind string) (inventory.Job, error) {
	var out inventory.Job
	return out, c.do(ctx, http.MethodPost, "/api/v1/machines/"+url.PathEscape(machine)+"/"+kind, nil, struct{}{}, &out)
}

// GetJob returns a job.
func (c *Client) GetJob(ctx context.Context, id int64) (inventory.Job, error) {
	var out inventory.Job
	return out, c.do(ctx, http.MethodGet, "/api/v1/jobs/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// ListJobs lists jobs, newest first.
func (c *Client) ListJobs(ctx context.Context, machine string, active bool) ([]inventory.Job, error) {
	q := url.Values{}
	if machine != "" {
		q.Set("machine", machine)
	}
	if active {
		q.Set("active", "true")
	}
	var out []inventory.Job
	return out, c.do(ctx, http.MethodGet, "/api/v1/jobs", q, nil, &out)
}
