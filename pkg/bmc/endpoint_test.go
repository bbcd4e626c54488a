package bmc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    Endpoint
		wantErr string
	}{
		{in: "ipmi://admin:pw@10.0.0.5", want: Endpoint{Protocol: ProtocolIPMI, Host: "10.0.0.5", Port: 623, Username: "admin", Password: "pw", Cipher: 3}},
		{in: "ipmi://admin:pw@bmc1:6230?cipher=17", want: Endpoint{Protocol: ProtocolIPMI, Host: "bmc1", Port: 6230, Username: "admin", Password: "pw", Cipher: 17}},
		{in: "redfish://root:p%40ss@[fd00::1]:8443?insecure=1", want: Endpoint{Protocol: ProtocolRedfish, Host: "fd00::1", Port: 8443, Username: "root", Password: "p@ss", Insecure: true}},
		{in: "redfish://root:x@bmc", want: Endpoint{Protocol: ProtocolRedfish, Host: "bmc", Port: 443, Username: "root", Password: "x"}},
		{in: "redfish+http://root:x@bmc", want: Endpoint{Protocol: ProtocolRedfish, Host: "bmc", Port: 80, Username: "root", Password: "x", PlainHTTP: true}},
		{in: "REDFISH://root:x@bmc/", want: Endpoint{Protocol: ProtocolRedfish, Host: "bmc", Port: 443, Username: "root", Password: "x"}},
		{in: "", wantErr: "empty"},
		{in: "bmc1", wantErr: "missing scheme"},
		{in: "http://a:b@c", wantErr: "unknown scheme"},
		{in: "ipmi://host", wantErr: "missing user"},
		{in: "ipmi://admin@host", wantErr: "missing password"},
		{in: "ipmi://admin:pw@", wantErr: "missing host"},
		{in: "ipmi://admin:pw@h:0", wantErr: "invalid port"},
		{in: "ipmi://admin:pw@h:70000", wantErr: "invalid port"},
		{in: "ipmi://admin:pw@h:", wantErr: "empty port"},
		{in: "ipmi://admin:pw@h/x", wantErr: "unexpected path"},
		{in: "ipmi://admin:pw@h?cipher=x", wantErr: "invalid cipher"},
		{in: "ipmi://admin:pw@h?insecure=1", wantErr: "unknown parameter"},
		{in: "redfish+http://a:pw@h?insecure=1", wantErr: "unknown parameter"},
		{in: "redfish://a:pw@h?insecure=maybe", wantErr: "invalid insecure"},
		{in: "ipmi:admin:pw@h", wantErr: "missing //"},
		{in: "ipmi://admin:hunter2%zz@h", wantErr: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidURL) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), ":pw@") {
					t.Fatalf("error leaks password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			// Round trip through URL().
			again, err := ParseURL(got.URL())
			if err != nil || again != got {
				t.Fatalf("round trip %q: %+v, %v", got.URL(), again, err)
			}
		})
	}
}

func TestEndpointRedaction(t *testing.T) {
	ep, err := ParseURL("redfish://root:Sup3r-Secret@bmc:8443?insecure=1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{ep.String(), ep.Redacted(), fmt.Sprintf("%v %s %+v %#v", ep, ep, ep, ep), ep.LogValue().String()} {
		if strings.Contains(s, "Sup3r-Secret") {
			t.Fatalf("password leaked: %s", s)
		}
	}
	if got, want := ep.Redacted(), "redfish://root:xxxxx@bmc:8443?insecure=1"; got != want {
		t.Fatalf("Redacted = %q, want %q", got, want)
	}
	if !strings.Contains(ep.URL(), "Sup3r-Secret") {
		t.Fatal("URL must keep the password")
	}
}

func TestScrubAndClassify(t *testing.T) {
	ep := Endpoint{Protocol: ProtocolRedfish, Host: "h", Port: 443, Username: "root", Password: "p@ss word"}
	raw := errors.New(`Post "https://root:p%40ss%20word@h/x": 401 Unauthorized p@ss word cm9vdDpwQHNzIHdvcmQ=`)
	err := wrapErr(ep, "power on", raw)
	if strings.Contains(err.Error(), "p@ss") || strings.Contains(err.Error(), "cm9vdDpwQHNzIHdvcmQ=") || strings.Contains(err.Error(), "p%40ss") {
		t.Fatalf("not scrubbed: %v", err)
	}
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("class: %v", err)
	}
	if errors.Unwrap(err) != nil { // multi-unwrap only
		t.Fatal("unexpected single unwrap")
	}
	for _, tc := range []struct {
		msg  string
		want error
	}{
		{"dial tcp 127.0.0.1:1: connect: connection refused", ErrUnreachable},
		{"Error: Unable to establish IPMI v2 / RMCP+ session", ErrNoSession},
		{"context deadline exceeded", ErrTimeout},
		{"exec: \"ipmitool\": executable file not found in $PATH", ErrToolMissing},
		{"503: busy", ErrBMC},
	} {
		if got := classify(ep, errors.New(tc.msg)); got != tc.want {
			t.Errorf("classify(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
	if !transient(wrapErr(ep, "x", errors.New("503 Service Unavailable"))) {
		t.Error("503 should be transient")
	}
	if transient(wrapErr(ep, "x", errors.New("401 Unauthorized"))) {
		t.Error("401 must not be transient")
	}
}

func TestNormalizePowerState(t *testing.T) {
	for in, want := range map[string]PowerState{
		"Chassis Power is on\n": PowerOn, "Chassis Power is off": PowerOff, "On": PowerOn, "Off": PowerOff,
		"PoweringOn": PowerOn, "PoweringOff": PowerOff, "Paused": PowerUnknown, "": PowerUnknown,
	} {
		if got := NormalizePowerState(in); got != want {
			t.Errorf("NormalizePowerState(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"ipmi://a:b@h", "redfish://a:b@[::1]:1?insecure=1", "redfish+http://a:b@h:80", "ipmi://a:b@h?cipher=3&cipher=1", "%", "ipmi://:@:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("error not ErrInvalidURL: %v", err)
			}
			return
		}
		red, err := ParseURL(ep.Redacted())
		if err != nil || red.Password != redactedPassword {
			t.Fatalf("Redacted %q does not mask the password (%v)", ep.Redacted(), err)
		}
		again, err := ParseURL(ep.URL())
		if err != nil {
			t.Fatalf("URL() %q does not parse: %v", ep.URL(), err)
		}
		if again != ep {
			t.Fatalf("round trip: %+v != %+v", again, ep)
		}
	})
}
