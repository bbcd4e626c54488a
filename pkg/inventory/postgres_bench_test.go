package inventory

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkStores runs the inventory benchmarks on SQLite (the anchor)
// and PostgreSQL side by side in one run:
//
//	go test -run '^$' -bench BenchmarkStores ./pkg/inventory
//
// PostgreSQL is the test cluster: local, unix socket, fsync on (as
// SQLite's synchronous=FULL).
func BenchmarkStores(b *testing.B) {
	type opened struct {
		name string
		s    testStore
		next int // the next machine number to create
	}
	open := func(b *testing.B) []*opened {
		return []*opened{
			{name: "sqlite", s: openSQLiteEnv(b).s},
			{name: "postgres", s: openPostgresEnv(b).s},
		}
	}
	b.Run("create", func(b *testing.B) {
		for _, o := range open(b) {
			b.Run(o.name, func(b *testing.B) {
				b.ResetTimer()
				seedStore(b, o.s, o.next, b.N)
				o.next += b.N
			})
		}
	})
	// One seeded store per backend serves both read benchmarks.
	seeded := open(b)
	for _, o := range seeded {
		seedStore(b, o.s, 0, 10000)
	}
	ctx := context.Background()
	b.Run("list10k", func(b *testing.B) {
		for _, o := range seeded {
			b.Run(o.name, func(b *testing.B) {
				for b.Loop() {
					ms, err := o.s.ListMachines(ctx, MachineFilter{})
					if err != nil || len(ms) != 10000 {
						b.Fatalf("%v %d", err, len(ms))
					}
				}
			})
		}
	})
	b.Run("bymac10k", func(b *testing.B) {
		for _, o := range seeded {
			b.Run(o.name, func(b *testing.B) {
				i := 0
				for b.Loop() {
					if _, err := o.s.MachineByMAC(ctx, benchMAC(i)); err != nil {
						b.Fatal(err)
					}
					i = (i + 7919) % 10000
				}
			})
		}
	})
}

func benchMAC(i int) string {
	return fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
}

// seedStore adds machines from..from+n through the public API, as seed
// does for SQLite.
func seedStore(b *testing.B, s Store, from, n int) {
	b.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		_, err := s.CreateMachine(ctx, Machine{
			Name: fmt.Sprintf("node-%05d", i),
			MACs: []string{benchMAC(i)},
			Tags: map[string]string{"rack": fmt.Sprintf("r%02d", i%40)},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
