// Package client is the Go client of metald's REST API, used by metalctl
// and by tests. It speaks pkg/metalapi's wire types and imports nothing
// of the server, so that what links it (metalctl) links no database, gin
// or BMC library.
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
	"strings"

	"github.com/metal-iaas/metal/pkg/metalapi"
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
		var e metalapi.Error
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
func (c *Client) ListMachines(ctx context.Context, state string, tags []string) ([]metalapi.Machine, error) {
	q := url.Values{}
	if state != "" {
		q.Set(metalapi.QueryState, state)
	}
	for _, t := range tags {
		q.Add(metalapi.QueryTag, t)
	}
	var out []metalapi.Machine
	return out, c.do(ctx, http.MethodGet, metalapi.PathMachines, q, nil, &out)
}

// GetMachine returns one machine.
func (c *Client) GetMachine(ctx context.Context, name string) (metalapi.Machine, error) {
	var out metalapi.Machine
	return out, c.do(ctx, http.MethodGet, metalapi.MachinePath(name), nil, nil, &out)
}

// CreateMachine enrols a machine.
func (c *Client) CreateMachine(ctx context.Context, m metalapi.MachineCreate) (metalapi.Machine, error) {
	var out metalapi.Machine
	return out, c.do(ctx, http.MethodPost, metalapi.PathMachines, nil, m, &out)
}

// PatchMachine changes a machine.
func (c *Client) PatchMachine(ctx context.Context, name string, p metalapi.MachinePatch) (metalapi.Machine, error) {
	var out metalapi.Machine
	return out, c.do(ctx, http.MethodPatch, metalapi.MachinePath(name), nil, p, &out)
}

// DeleteMachine removes a machine.
func (c *Client) DeleteMachine(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, metalapi.MachinePath(name), nil, nil, nil)
}

// ListLeases returns DHCP leases.
func (c *Client) ListLeases(ctx context.Context) ([]metalapi.Lease, error) {
	var out []metalapi.Lease
	return out, c.do(ctx, http.MethodGet, metalapi.PathLeases, nil, nil, &out)
}

// ListImages returns the image library.
func (c *Client) ListImages(ctx context.Context) ([]metalapi.Image, error) {
	var out []metalapi.Image
	return out, c.do(ctx, http.MethodGet, metalapi.PathImages, nil, nil, &out)
}

// GetImage returns one image.
func (c *Client) GetImage(ctx context.Context, name string) (metalapi.Image, error) {
	var out metalapi.Image
	return out, c.do(ctx, http.MethodGet, metalapi.ImagePath(name), nil, nil, &out)
}

// DeleteImage removes an image.
func (c *Client) DeleteImage(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, metalapi.ImagePath(name), nil, nil, nil)
}

// UploadImage streams an image to metald, which inspects it before
// storing it.
func (c *Client) UploadImage(ctx context.Context, name string, body io.Reader, size int64, replace bool) (metalapi.Image, error) {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + metalapi.ImagePath(name)
	if replace {
		u.RawQuery = metalapi.QueryReplace + "=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return metalapi.Image{}, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return metalapi.Image{}, fmt.Errorf("upload to %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e metalapi.Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return metalapi.Image{}, &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
		}
		return metalapi.Image{}, &APIError{Status: resp.StatusCode, Message: "upload: " + resp.Status}
	}
	var img metalapi.Image
	return img, json.NewDecoder(resp.Body).Decode(&img)
}

// Power runs a power action on machines selected by name, tag or all.
func (c *Client) Power(ctx context.Context, req metalapi.PowerRequest) ([]metalapi.PowerResult, error) {
	var out []metalapi.PowerResult
	return out, c.do(ctx, http.MethodPost, metalapi.PathPower, nil, req, &out)
}

// BootDevice sets the next boot device of machines.
func (c *Client) BootDevice(ctx context.Context, req metalapi.BootRequest) ([]metalapi.PowerResult, error) {
	var out []metalapi.PowerResult
	return out, c.do(ctx, http.MethodPost, metalapi.PathBootDev, nil, req, &out)
}

// VerifyBMC asks metald to check a machine's BMC answers.
func (c *Client) VerifyBMC(ctx context.Context, name string) (metalapi.VerifyResult, error) {
	var out metalapi.VerifyResult
	return out, c.do(ctx, http.MethodPost, metalapi.MachineActionPath(name, metalapi.ActionVerifyBMC), nil, struct{}{}, &out)
}

// Provision starts provisioning a machine.
func (c *Client) Provision(ctx context.Context, machine string, req metalapi.ProvisionRequest) (metalapi.Job, error) {
	var out metalapi.Job
	return out, c.do(ctx, http.MethodPost, metalapi.MachineActionPath(machine, metalapi.ActionProvision), nil, req, &out)
}

// StartJob starts an inspect or deprovision job.
func (c *Client) StartJob(ctx context.Context, machine, kind string) (metalapi.Job, error) {
	var out metalapi.Job
	return out, c.do(ctx, http.MethodPost, metalapi.MachineActionPath(machine, kind), nil, struct{}{}, &out)
}

// GetJob returns a job.
func (c *Client) GetJob(ctx context.Context, id int64) (metalapi.Job, error) {
	var out metalapi.Job
	return out, c.do(ctx, http.MethodGet, metalapi.JobPath(id), nil, nil, &out)
}

// ListJobs lists jobs, newest first.
func (c *Client) ListJobs(ctx context.Context, machine string, active bool) ([]metalapi.Job, error) {
	q := url.Values{}
	if machine != "" {
		q.Set(metalapi.QueryMachine, machine)
	}
	if active {
		q.Set(metalapi.QueryActive, "true")
	}
	var out []metalapi.Job
	return out, c.do(ctx, http.MethodGet, metalapi.PathJobs, q, nil, &out)
}
