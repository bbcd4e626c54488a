// Package metadata serves what the installed OS's cloud-init reads at first
// boot: NoCloud over HTTP at /nocloud/<machine>/ (meta-data, user-data,
// vendor-data, network-config) and an EC2-style /latest/meta-data/ tree
// for the machine identified by the request's source address.
package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/pkg/inventory"
)

// Store is what metadata needs from the inventory.
type Store interface {
	GetMachine(ctx context.Context, name string) (inventory.Machine, error)
	MachineByMAC(ctx context.Context, mac string) (inventory.Machine, error)
	ListMachines(ctx context.Context, f inventory.MachineFilter) ([]inventory.Machine, error)
	LeaseByIP(ctx context.Context, ip string) (inventory.Lease, error)
	ListJobs(ctx context.Context, machine string, activeOnly bool, limit int) ([]inventory.Job, error)
}

// Service answers metadata requests.
type Service struct {
	store Store
	log   *slog.Logger
}

// New returns the metadata service.
func New(store Store, log *slog.Logger) *Service { return &Service{store: store, log: log} }

// Routes contributes /nocloud/… and /latest/… (unauthenticated, as
// cloud-init expects).
func (s *Service) Routes(r gin.IRouter) {
	r.GET("/nocloud/:machine/:item", s.nocloud)
	r.GET("/latest/meta-data/", s.ec2Index)
	r.GET("/latest/meta-data/:key", s.ec2Key)
	r.GET("/latest/user-data", s.ec2UserData)
}

// provision is the part of the latest provision job cloud-init needs.
type provision struct {
	JobID    int64
	UserData string
}

func (s *Service) lastProvision(ctx context.Context, machine string) provision {
	jobs, err := s.store.ListJobs(ctx, machine, false, 20)
	if err != nil {
		return provision{}
	}
	for _, j := range jobs {
		if j.Kind != inventory.JobProvision {
			continue
		}
		var p struct {
			UserData string `json:"user_data"`
		}
		_ = json.Unmarshal(j.Params, &p)
		return provision{JobID: j.ID, UserData: p.UserData}
	}
	return provision{}
}

func instanceID(m inventory.Machine, p provision) string {
	// A new instance-id per provisioning makes cloud-init run again.
	return fmt.Sprintf("%s-%d", m.Name, p.JobID)
}

func (s *Service) nocloud(c *gin.Context) {
	ctx := c.Request.Context()
	m, err := s.store.GetMachine(ctx, c.Param("machine"))
	if err != nil {
		c.String(http.StatusNotFound, "no machine %s\n", c.Param("machine"))
		return
	}
	p := s.lastProvision(ctx, m.Name)
	switch c.Param("item") {
	case "meta-data":
		c.String(http.StatusOK, "instance-id: %s\nlocal-hostname: %s\n", instanceID(m, p), m.Name)
	case "user-data":
		c.String(http.StatusOK, "%s", userData(p))
	case "vendor-data":
		c.String(http.StatusOK, "")
	case "network-config":
		c.String(http.StatusOK, "%s", networkConfig(m))
	default:
		c.String(http.StatusNotFound, "no such item %s\n", c.Param("item"))
	}
}

func userData(p provision) string {
	if p.UserData == "" {
		return "#cloud-config\n{}\n"
	}
	return p.UserData
}

// networkConfig is netplan v2 (cloud-init network-config version 2): every
// NIC of the machine, matched by MAC, on DHCP (metald's full mode hands a
// reserved machine its --ip).
func networkConfig(m inventory.Machine) string {
	var b strings.Builder
	b.WriteString("version: 2\nethernets:\n")
	for i, mac := range m.MACs {
		fmt.Fprintf(&b, "  nic%d:\n    match:\n      macaddress: \"%s\"\n    dhcp4: true\n", i, mac)
	}
	return b.String()
}

// bySource finds the machine a request comes from: its reserved address,
// else the DHCP lease of the address.
func (s *Service) bySource(c *gin.Context) (inventory.Machine, bool) {
	ctx := c.Request.Context()
	ip, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err != nil {
		ip = c.Request.RemoteAddr
	}
	ms, err := s.store.ListMachines(ctx, inventory.MachineFilter{})
	if err == nil {
		for _, m := range ms {
			if m.IP == ip {
				return m, true
			}
		}
	}
	if l, err := s.store.LeaseByIP(ctx, ip); err == nil {
		if m, err := s.store.MachineByMAC(ctx, l.MAC); err == nil {
			return m, true
		}
	}
	c.String(http.StatusNotFound, "no machine is known at %s\n", ip)
	return inventory.Machine{}, false
}

func (s *Service) ec2Values(c *gin.Context, m inventory.Machine) map[string]string {
	p := s.lastProvision(c.Request.Context(), m.Name)
	ip, _, _ := net.SplitHostPort(c.Request.RemoteAddr)
	v := map[string]string{
		"instance-id":    instanceID(m, p),
		"hostname":       m.Name,
		"local-hostname": m.Name,
		"local-ipv4":     ip,
	}
	if len(m.MACs) > 0 {
		v["mac"] = m.MACs[0]
	}
	return v
}

func (s *Service) ec2Index(c *gin.Context) {
	m, ok := s.bySource(c)
	if !ok {
		return
	}
	vals := s.ec2Values(c, m)
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c.String(http.StatusOK, "%s\n", strings.Join(keys, "\n"))
}

func (s *Service) ec2Key(c *gin.Context) {
	m, ok := s.bySource(c)
	if !ok {
		return
	}
	v, found := s.ec2Values(c, m)[c.Param("key")]
	if !found {
		c.String(http.StatusNotFound, "no such key\n")
		return
	}
	c.String(http.StatusOK, "%s", v)
}

func (s *Service) ec2UserData(c *gin.Context) {
	m, ok := s.bySource(c)
	if !ok {
		return
	}
	c.String(http.StatusOK, "%s", userData(s.lastProvision(c.Request.Context(), m.Name)))
}
