// Package metalapi is the public contract of metald's REST API under
// /api/v1: the JSON wire types of machines, events, leases, images, jobs
// and power operations, the paths they are served at, the error body and
// its stable codes, and the events pagination (limits, order, the Link
// header).
//
// Both ends use it: metald's services convert their records to these types
// at their edge (internal/api, internal/jobs, internal/power,
// internal/images), and the Go client (internal/client) and metalctl speak
// only these types. It imports no other project package, so that a client
// of the API links none of the server: renaming a database column or an
// inventory field cannot change the API by accident, and a change to the
// API is a change to this package (and to the OpenAPI document, which a
// test checks against these types).
//
// Every response is JSON; errors are a non-2xx status with an Error body.
package metalapi

import (
	"net/url"
	"strconv"
)

// Paths of the API.
const (
	PathPrefix   = "/api/v1"
	PathOpenAPI  = PathPrefix + "/openapi.json"
	PathMachines = PathPrefix + "/machines"
	PathEvents   = PathPrefix + "/events"
	PathLeases   = PathPrefix + "/leases"
	PathImages   = PathPrefix + "/images"
	PathJobs     = PathPrefix + "/jobs"
	PathPower    = PathPrefix + "/power"
	PathBootDev  = PathPrefix + "/bootdev"
)

// Actions on one machine, under MachinePath(name).
const (
	ActionProvision   = "provision"
	ActionInspect     = "inspect"
	ActionDeprovision = "deprovision"
	ActionVerifyBMC   = "verify-bmc"
)

// MachinePath is the path of one machine.
func MachinePath(name string) string { return PathMachines + "/" + url.PathEscape(name) }

// MachineActionPath is the path of an action (ActionProvision, …) on one
// machine.
func MachineActionPath(name, action string) string { return MachinePath(name) + "/" + action }

// ImagePath is the path of one image.
func ImagePath(name string) string { return PathImages + "/" + url.PathEscape(name) }

// JobPath is the path of one job.
func JobPath(id int64) string { return PathJobs + "/" + strconv.FormatInt(id, 10) }
