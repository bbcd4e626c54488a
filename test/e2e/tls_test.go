package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/metal-iaas/metal/test/lab"
)

const (
	macTLS = "52:54:00:e2:e0:71"
	ipTLS  = "10.66.0.71"
)

// TestProvisionOverTLS is TestProvisionOVA with metald --tls-auto: iPXE
// fetches the agent's kernel and initrd over plain HTTP, the initrd
// carries metald's CA, and the agent registers, polls, downloads the image
// and reports over HTTPS (metald answers the agent API only there: on the
// plain listener it would be refused with 421). metalctl talks HTTPS too.
func TestProvisionOverTLS(t *testing.T) {
	t.Parallel() // one VM: two such tests share the 2 cores
	r := newRigCfg(t, lab.MetaldConfig{TLSPort: 8443})
	img := testImage(t, r)
	v := r.addVM("vmtls", macTLS, ipTLS, 1<<30)
	r.mustCtl("image", "upload", img.OVA, "--name", "os-tls")
	var im image
	r.ctlJSON(&im, "image", "show", "os-tls")
	provisionAndBoot(t, r, v, "os-tls", im, img.Raw)

	serial := v.SerialText()
	for _, want := range []string{"url=https://" + lab.BridgeIP + ":8443", "trusting metald's CA"} {
		if !strings.Contains(serial, want) {
			t.Errorf("agent console lacks %q", want)
		}
	}
	metrics, err := r.md.Get(context.Background(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var agentCalls int
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "metald_http_requests_total{") && strings.Contains(line, `route="/agent/v1/`) {
			agentCalls++
		}
		if strings.HasPrefix(line, `metald_http_misdirected_total{listener="http"}`) {
			t.Errorf("requests refused on the plain listener: %s", line)
		}
	}
	if agentCalls == 0 {
		t.Errorf("no agent API requests in /metrics")
	}
	if !strings.Contains(metrics, `route="/images/*"`) {
		t.Errorf("no image download in /metrics")
	}
}
