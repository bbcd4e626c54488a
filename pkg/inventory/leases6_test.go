package inventory

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLeases6 checks that a MAC holds a DHCPv4 and a DHCPv6 lease side by
// side, that LeaseByIP finds either, that ListLeases lists both families
// and that PutLease6 refuses an IPv4 address.
func TestLeases6(t *testing.T) {
	forEachStore(t, func(t *testing.T, env *testEnv) {
		s := env.s
		ctx := context.Background()
		exp := time.Now().Add(time.Hour)
		mac := "52:54:00:aa:06:01"
		if err := s.PutLease(ctx, Lease{MAC: mac, IP: "10.0.0.10", State: "bound", ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutLease6(ctx, Lease{MAC: mac, IP: "FD00::0100", State: "bound", ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutLease6(ctx, Lease{MAC: mac, IP: "10.0.0.11", State: "bound", ExpiresAt: exp}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("v4 address in leases6: %v", err)
		}
		if l, err := s.GetLease(ctx, mac); err != nil || l.IP != "10.0.0.10" {
			t.Fatalf("v4 lease: %v %+v", err, l)
		}
		if l, err := s.GetLease6(ctx, mac); err != nil || l.IP != "fd00::100" {
			t.Fatalf("v6 lease: %v %+v", err, l)
		}
		if l, err := s.LeaseByIP(ctx, "fd00::100"); err != nil || l.MAC != mac {
			t.Fatalf("v6 by ip: %v %+v", err, l)
		}
		// The address moves to another MAC.
		if err := s.PutLease6(ctx, Lease{MAC: "52:54:00:aa:06:02", IP: "fd00::100", State: "bound", ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetLease6(ctx, mac); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old v6 holder kept: %v", err)
		}
		ls, err := s.ListLeases(ctx)
		if err != nil || len(ls) != 2 || ls[0].IP != "10.0.0.10" || ls[1].IP != "fd00::100" {
			t.Fatalf("list: %v %+v", err, ls)
		}
		if err := s.DeleteLease6(ctx, "52:54:00:aa:06:02"); err != nil {
			t.Fatal(err)
		}
		if ls, err := s.ListLeases6(ctx); err != nil || len(ls) != 0 {
			t.Fatalf("after delete: %v %+v", err, ls)
		}
	})
}
