package metalapi

import (
	"net/url"
	"testing"
	"time"
)

func TestEventQueryValues(t *testing.T) {
	q := EventQuery{Since: 5, Before: 9, Machine: "m1", Type: "dhcp", Limit: 7, Newest: true, Wait: 30 * time.Second}
	want := "before=9&limit=7&machine=m1&order=newest&since=5&type=dhcp&wait=30s"
	if got := q.Values().Encode(); got != want {
		t.Errorf("Values: %s, want %s", got, want)
	}
	if got := (EventQuery{}).Values().Encode(); got != "" {
		t.Errorf("zero query: %q", got)
	}
}

// TestNextEventQuery: the Link header metald sets (NextLink) turns into
// the next page's query, forward and backward; a link that does not move
// is an error, no link the last page.
func TestNextEventQuery(t *testing.T) {
	link := func(v url.Values) string {
		return NextLink((&url.URL{Path: PathEvents, RawQuery: v.Encode()}).String())
	}
	fwd := EventQuery{Since: 10, Limit: 100, Type: "t"}
	next, err := NextEventQuery(fwd, link(url.Values{"since": {"110"}, "limit": {"100"}, "type": {"t"}}))
	if err != nil || next == nil || next.Since != 110 || next.Limit != 100 || next.Type != "t" {
		t.Fatalf("forward: %+v, %v", next, err)
	}
	back := EventQuery{Newest: true, Limit: 50}
	next, err = NextEventQuery(back, link(url.Values{"before": {"951"}, "order": {"newest"}, "limit": {"50"}}))
	if err != nil || next == nil || next.Before != 951 || !next.Newest {
		t.Fatalf("backward: %+v, %v", next, err)
	}
	if next, err := NextEventQuery(fwd, ""); next != nil || err != nil {
		t.Fatalf("no link: %+v, %v", next, err)
	}
	if _, err := NextEventQuery(fwd, link(url.Values{"since": {"10"}})); err == nil {
		t.Fatal("a link that does not move was taken")
	}
	if _, err := NextEventQuery(fwd, `</api/v1/events?since=x>; rel="next"`); err == nil {
		t.Fatal("a malformed since was taken")
	}
}

func TestPaths(t *testing.T) {
	for got, want := range map[string]string{
		MachinePath("a b/c"):                       "/api/v1/machines/a%20b%2Fc",
		MachineActionPath("m1", ActionVerifyBMC):   "/api/v1/machines/m1/verify-bmc",
		ImagePath("debian-12"):                     "/api/v1/images/debian-12",
		JobPath(42):                                "/api/v1/jobs/42",
		MachineActionPath("m1", ActionProvision):   "/api/v1/machines/m1/provision",
		MachineActionPath("m1", ActionDeprovision): "/api/v1/machines/m1/deprovision",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

func TestParseConfigDrive(t *testing.T) {
	for in, want := range map[string]string{"": "nocloud", " NoCloud ": "nocloud", "configdrive": "configdrive", "none": "none", "iso": ""} {
		got, err := ParseConfigDrive(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}
