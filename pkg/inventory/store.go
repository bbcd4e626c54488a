// Package inventory is metal's system of record: machines (names, MACs,
// UUID, serial, tags, lifecycle state, BMC endpoint with credentials sealed
// at rest, hardware facts), images, DHCP leases, jobs, events and API
// tokens.
//
// Store is the interface every consumer sees; OpenSQLite returns the
// default implementation, OpenPostgres the one several metalds can share.
// Both are one SQL store core over database/sql (sqlstore*.go: every
// method and query, written with ? placeholders) with a small dialect
// each (dialect.go; sqlite.go, postgres.go): placeholders, unique
// violations, row locks, what an event insert also does (PostgreSQL's
// NOTIFY, heard by postgres_listen.go) and the migrations directory.
// Validation, conflicts and their messages, the order of the writes and
// their events (ops_common.go, update_common.go, jobs.go,
// store_common.go, events_common.go, lookup_common.go), row scanning
// (scan_common.go) and migration sequencing (migrate_common.go) are the
// core's helpers; the writes reach the SQL through a storeTx bound to
// one transaction. The machine lifecycle (SPEC §3) is enforced in
// lifecycle.go and nowhere else: every state change is checked there and
// written together with its event in one transaction.
package inventory

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Concrete errors wrap one of these with the detail a user
// needs (which field, which machine).
var (
	ErrNotFound          = errors.New("not found")
	ErrConflict          = errors.New("conflict")
	ErrInvalid           = errors.New("invalid")
	ErrInvalidTransition = errors.New("invalid state transition")
	ErrUnauthorized      = errors.New("unauthorized")
	ErrSchemaTooNew      = errors.New("database schema is newer than this metald")
)

// Store is the inventory. Implementations are safe for concurrent use.
type Store interface {
	CreateMachine(ctx context.Context, m Machine) (Machine, error)
	GetMachine(ctx context.Context, name string) (Machine, error)
	MachineByMAC(ctx context.Context, mac string) (Machine, error)
	MachineByUUID(ctx context.Context, uuid string) (Machine, error)
	ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error)
	UpdateMachine(ctx context.Context, name string, p MachinePatch) (Machine, error)
	DeleteMachine(ctx context.Context, name string) error
	// Transition moves a machine to another lifecycle state, enforcing the
	// allowed transitions, and records a machine.state event in the same
	// transaction.
	Transition(ctx context.Context, name string, to State, reason string) (Machine, error)
	CountMachinesByState(ctx context.Context) (map[State]int, error)
	// BMCURL returns the machine's BMC URL with its credentials in clear,
	// for the code that talks to the BMC. Never show it to a user.
	BMCURL(ctx context.Context, name string) (string, error)

	AppendEvent(ctx context.Context, e Event) (Event, error)
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// WaitEvents blocks until an event with an id above since exists or ctx
	// ends; it returns immediately if one already exists.
	WaitEvents(ctx context.Context, since int64) error

	CreateToken(ctx context.Context, name string) (Token, string, error)
	ListTokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, id string) error
	// CheckToken returns the token a secret belongs to, or ErrUnauthorized.
	CheckToken(ctx context.Context, secret string) (Token, error)

	PutLease(ctx context.Context, l Lease) error
	GetLease(ctx context.Context, mac string) (Lease, error)
	LeaseByIP(ctx context.Context, ip string) (Lease, error)
	DeleteLease(ctx context.Context, mac string) error
	ListLeases(ctx context.Context) ([]Lease, error) // DHCPv4 then DHCPv6
	// The DHCPv6 leases (table leases6), one per MAC beside its v4 one.
	PutLease6(ctx context.Context, l Lease) error
	GetLease6(ctx context.Context, mac string) (Lease, error)
	DeleteLease6(ctx context.Context, mac string) error
	ListLeases6(ctx context.Context) ([]Lease, error)

	PutImage(ctx context.Context, img Image) error
	GetImage(ctx context.Context, name string) (Image, error)
	ListImages(ctx context.Context) ([]Image, error)
	DeleteImage(ctx context.Context, name string) error

	Close() error
}

// Machine is one server. Like every record of the inventory it has no
// JSON tags: what clients see of it is pkg/metalapi's, into which the
// services convert it at their edge.
type Machine struct {
	Name   string
	MACs   []string
	UUID   string
	Serial string
	IP     string
	// IP6 is the IPv6 address reserved for the machine's MACs by the
	// DHCPv6 server in full mode ("" for one from the pool).
	IP6         string
	Tags        map[string]string
	State       State
	StateReason string
	// BMC is the BMC URL with the password masked. On create, it carries
	// the URL with credentials; the store seals them.
	BMC            string
	PowerState     string
	PowerCheckedAt time.Time
	// Hardware is the agent's inventory report, stored as JSON.
	Hardware []byte
	// UEFIBoot is the UEFI network boot chain this machine gets: "" (the
	// daemon's default), UEFIBootIPXE or UEFIBootShim (uefiboot.go).
	UEFIBoot  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// MachineFilter selects machines; zero fields match everything.
type MachineFilter struct {
	State State
	Tags  map[string]string
}

// MachinePatch changes a machine; nil fields stay as they are.
type MachinePatch struct {
	MACs       *[]string
	UUID       *string
	Serial     *string
	IP         *string
	IP6        *string
	BMC        *string
	Tags       map[string]string // merged; an empty value deletes the key
	Hardware   []byte
	PowerState *string
	PowerAt    *time.Time
	UEFIBoot   *string // "", "ipxe" or "shim" (NormalizeUEFIBoot)
}

// Event is one thing that happened, in order.
type Event struct {
	ID      int64
	Time    time.Time
	Machine string
	MAC     string
	Type    string
	Message string
	Data    map[string]any
}

// EventFilter selects events with id above Since (and below Before when
// it is set). ListEvents returns the oldest Limit of them, or the newest
// Limit with Newest; either way oldest first.
type EventFilter struct {
	Since   int64
	Before  int64
	Machine string
	Type    string
	Limit   int
	Newest  bool
}

// Token is an API token; the secret is shown once at creation and stored
// only as a hash.
type Token struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
	Revoked    bool
}

// Lease is a DHCP lease handed out in full mode.
type Lease struct {
	MAC       string
	IP        string
	Hostname  string
	State     string
	ExpiresAt time.Time
	UpdatedAt time.Time
}

// Image is an uploaded disk image in the data dir.
type Image struct {
	Name        string
	File        string
	Format      string
	Chain       []string
	Size        int64
	VirtualSize int64
	SHA256      string
	RawSHA256   string
	CreatedAt   time.Time
}
