package inventory

import (
	"context"
	"fmt"
	"strings"
)

// The single-row lookups: input normalisation and the not-found errors
// are decided here; the SQL store core passes its query method and the
// WHERE clause.

// query is a store's SELECT of T's columns with clause appended.
type query[T any] func(ctx context.Context, clause string, args ...any) ([]T, error)

// first returns the first of a query's results, or notFound's error when
// there is none.
func first[T any](list []T, err error, notFound func() error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(list) == 0 {
		return zero, notFound()
	}
	return list[0], nil
}

func machineByName(ctx context.Context, q query[Machine], clause, name string) (Machine, error) {
	ms, err := q(ctx, clause, name)
	return first(ms, err, func() error { return notFound("machine", name) })
}

func machineByMAC(ctx context.Context, q query[Machine], clause, mac string) (Machine, error) {
	norm, err := NormalizeMAC(mac)
	if err != nil {
		return Machine{}, err
	}
	ms, err := q(ctx, clause, norm)
	return first(ms, err, func() error { return fmt.Errorf("%w: no machine has mac %s", ErrNotFound, norm) })
}

// machineByUUID matches in any letter case; clause compares lower(uuid).
func machineByUUID(ctx context.Context, q query[Machine], clause, uuid string) (Machine, error) {
	uuid = strings.ToLower(strings.TrimSpace(uuid))
	if uuid == "" {
		return Machine{}, fmt.Errorf("%w: empty uuid", ErrInvalid)
	}
	ms, err := q(ctx, clause, uuid)
	return first(ms, err, func() error { return fmt.Errorf("%w: no machine has uuid %s", ErrNotFound, uuid) })
}

func leaseByMAC(ctx context.Context, q query[Lease], clause, mac string) (Lease, error) {
	norm, err := NormalizeMAC(mac)
	if err != nil {
		return Lease{}, err
	}
	ls, err := q(ctx, clause, norm)
	return first(ls, err, func() error { return notFound("lease for mac", norm) })
}

func leaseByIP(ctx context.Context, q query[Lease], clause, ip string) (Lease, error) {
	ls, err := q(ctx, clause, strings.TrimSpace(ip))
	return first(ls, err, func() error { return notFound("lease for ip", ip) })
}

func imageByName(ctx context.Context, q query[Image], clause, name string) (Image, error) {
	imgs, err := q(ctx, clause, name)
	return first(imgs, err, func() error { return notFound("image", name) })
}
