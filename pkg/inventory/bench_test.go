package inventory

import (
	"context"
	"fmt"
	"testing"
)

// seed adds n machines, each with one MAC, through the public API.
func seed(b *testing.B, s *SQLite, n int) {
	b.Helper()
	ctx := context.Background()
	for i := range n {
		_, err := s.CreateMachine(ctx, Machine{
			Name: fmt.Sprintf("node-%05d", i),
			MACs: []string{fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)},
			Tags: map[string]string{"rack": fmt.Sprintf("r%02d", i%40)},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateMachine measures one enrolment (a durable transaction).
func BenchmarkCreateMachine(b *testing.B) {
	s, _ := openTest(b)
	b.ResetTimer()
	seed(b, s, b.N)
}

// BenchmarkListMachines10k lists 10,000 machines.
func BenchmarkListMachines10k(b *testing.B) {
	s, _ := openTest(b)
	seed(b, s, 10000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		ms, err := s.ListMachines(ctx, MachineFilter{})
		if err != nil || len(ms) != 10000 {
			b.Fatalf("%v %d", err, len(ms))
		}
	}
}

// BenchmarkMachineByMAC10k looks one machine up by MAC among 10,000.
func BenchmarkMachineByMAC10k(b *testing.B) {
	s, _ := openTest(b)
	seed(b, s, 10000)
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		mac := fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
		if _, err := s.MachineByMAC(ctx, mac); err != nil {
			b.Fatal(err)
		}
		i = (i + 7919) % 10000
	}
}
