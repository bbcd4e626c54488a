package metadata

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/metal-iaas/metal/internal/trust"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// ec2Versions are the metadata versions served besides "latest": the
// ones cloud-init's Ec2 datasource probes (min_metadata_version and
// extended_metadata_versions).
var ec2Versions = []string{"latest", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23"}

const (
	headerToken    = "X-aws-ec2-metadata-token"
	headerTokenTTL = "X-aws-ec2-metadata-token-ttl-seconds"
	maxTokenTTL    = 6 * time.Hour
	maxTokens      = 4096
)

func (s *Service) ec2Routes(r gin.IRouter) {
	r.PUT("/latest/api/token", s.ec2Token)
	for _, v := range ec2Versions {
		r.GET("/"+v+"/meta-data", s.ec2MetaData)
		r.GET("/"+v+"/meta-data/*key", s.ec2MetaData)
		r.GET("/"+v+"/user-data", s.ec2UserData)
	}
}

// tokens are IMDSv2 session tokens, each bound to the address that asked
// for it.
type tokens struct {
	mu sync.Mutex
	m  map[string]tokenEntry
}

type tokenEntry struct {
	src     netip.Addr
	expires time.Time
}

func newTokens() *tokens { return &tokens{m: map[string]tokenEntry{}} }

func (t *tokens) issue(src netip.Addr, ttl time.Duration) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if len(t.m) >= maxTokens {
		for k, e := range t.m {
			if now.After(e.expires) {
				delete(t.m, k)
			}
		}
		for k := range t.m { // still full: drop any
			if len(t.m) < maxTokens {
				break
			}
			delete(t.m, k)
		}
	}
	t.m[tok] = tokenEntry{src: src, expires: now.Add(ttl)}
	return tok
}

func (t *tokens) valid(tok string, src netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[tok]
	return ok && e.src == src && time.Now().Before(e.expires)
}

// ec2Token is IMDSv2's PUT /latest/api/token: a token for the caller's
// address, valid for the TTL it asks (1 s – 6 h).
func (s *Service) ec2Token(c *gin.Context) {
	m, src, ok := s.bySource(c)
	if !ok {
		return
	}
	ttl, err := strconv.Atoi(c.GetHeader(headerTokenTTL))
	if err != nil || ttl < 1 || time.Duration(ttl)*time.Second > maxTokenTTL {
		c.String(http.StatusBadRequest, "%s must be 1–%d seconds\n", headerTokenTTL, int(maxTokenTTL.Seconds()))
		return
	}
	if c.GetHeader("X-Forwarded-For") != "" {
		// As EC2: a token request through a proxy is refused.
		s.refuse(c, http.StatusForbidden, "token", m.Name, fmt.Errorf("token requests through a proxy are refused"))
		return
	}
	c.Header(headerTokenTTL, strconv.Itoa(ttl))
	c.String(http.StatusOK, "%s", s.tokens.issue(src, time.Duration(ttl)*time.Second))
}

// ec2Machine resolves the caller and checks an IMDSv2 token when one is
// sent (IMDSv1 requests without one are answered too).
func (s *Service) ec2Machine(c *gin.Context) (inventory.Machine, bool) {
	m, src, ok := s.bySource(c)
	if !ok {
		return m, false
	}
	if tok := c.GetHeader(headerToken); tok != "" && !s.tokens.valid(tok, src) {
		s.refuse(c, http.StatusUnauthorized, "token", m.Name, fmt.Errorf("metadata token unknown, expired or not issued to %s", src))
		return m, false
	}
	return m, true
}

// ec2Tree is the machine's meta-data as paths → values; directories are
// implied by the paths.
func (s *Service) ec2Tree(c *gin.Context, m inventory.Machine) map[string]string {
	sd := s.seedFor(c.Request.Context(), m)
	src := trust.Source(c.Request.RemoteAddr)
	t := map[string]string{
		"instance-id":                 sd.instanceID,
		"hostname":                    sd.hostname(),
		"local-hostname":              sd.hostname(),
		"local-ipv4":                  src.String(),
		"placement/availability-zone": "metal",
		"services/domain":             "metal",
		"instance-type":               "metal",
		"ami-launch-index":            "0",
		"block-device-mapping/root":   "/dev/sda1",
	}
	for i, mac := range m.MACs {
		mac = strings.ToLower(mac)
		if i == 0 {
			t["mac"] = mac
			t["network/interfaces/macs/"+mac+"/local-ipv4s"] = src.String()
		}
		t["network/interfaces/macs/"+mac+"/mac"] = mac
		t["network/interfaces/macs/"+mac+"/device-number"] = strconv.Itoa(i)
	}
	for i, k := range sd.ci.SSHKeys {
		t[fmt.Sprintf("public-keys/%d/openssh-key", i)] = k
	}
	return t
}

// ec2MetaData answers a leaf with its value and a directory with its
// entries, one a line, sub-directories with a trailing slash
// (public-keys/ lists "0=key0", as EC2 does).
func (s *Service) ec2MetaData(c *gin.Context) {
	m, ok := s.ec2Machine(c)
	if !ok {
		return
	}
	tree := s.ec2Tree(c, m)
	key := strings.Trim(c.Param("key"), "/")
	if v, ok := tree[key]; ok {
		c.String(http.StatusOK, "%s", v)
		return
	}
	prefix := key + "/"
	if key == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	var entries []string
	for k := range tree {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		if isDir {
			name += "/"
		}
		if key == "public-keys" {
			name = strings.TrimSuffix(name, "/") + "=key" + strings.TrimSuffix(name, "/")
		}
		if !seen[name] {
			seen[name] = true
			entries = append(entries, name)
		}
	}
	if len(entries) == 0 {
		c.String(http.StatusNotFound, "no such key\n")
		return
	}
	sort.Strings(entries)
	c.String(http.StatusOK, "%s", strings.Join(entries, "\n"))
}

func (s *Service) ec2UserData(c *gin.Context) {
	m, ok := s.ec2Machine(c)
	if !ok {
		return
	}
	if !userDataAllowed(m) {
		s.refuse(c, http.StatusForbidden, "state", m.Name, fmt.Errorf("machine %s is %s: user-data is served only while provisioning or provisioned", m.Name, m.State))
		return
	}
	_, ci := s.lastProvision(c.Request.Context(), m.Name)
	if ci.UserData == "" {
		c.String(http.StatusNotFound, "no user-data\n")
		return
	}
	c.String(http.StatusOK, "%s", ci.UserData)
}
