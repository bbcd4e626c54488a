package inventory

import "strings"

// This file turns result rows into inventory types for both databases:
// the column lists are the same in both schemas.

// rowScanner is a result set (*sql.Rows).
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanner is one row: a rowScanner or *sql.Row.
type scanner interface {
	Scan(dest ...any) error
}

// scanAll reads every remaining row with scan. The result is never nil.
func scanAll[T any](rows rowScanner, scan func(scanner) (T, error)) ([]T, error) {
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// machineRows is the result of a machine query before its MACs and tags
// are filled in: the machines in row order, their row ids, and where each
// id stands in the list.
type machineRows struct {
	list []Machine
	ids  []int64
	idx  map[int64]int
}

// scanMachines reads rows of machineCols. An empty result has a nil list.
func scanMachines(rows rowScanner) (machineRows, error) {
	mr := machineRows{idx: map[int64]int{}}
	for rows.Next() {
		var m Machine
		var id, powerAt, created, updated int64
		var state, hw string
		if err := rows.Scan(&id, &m.Name, &m.UUID, &m.Serial, &state, &m.StateReason, &m.IP, &m.BMC,
			&m.PowerState, &powerAt, &hw, &m.UEFIBoot, &m.IP6, &created, &updated); err != nil {
			return machineRows{}, err
		}
		m.State = State(state)
		m.PowerCheckedAt, m.CreatedAt, m.UpdatedAt = fromNano(powerAt), fromNano(created), fromNano(updated)
		if hw != "" {
			m.Hardware = []byte(hw)
		}
		m.MACs = []string{}
		mr.idx[id] = len(mr.list)
		mr.ids = append(mr.ids, id)
		mr.list = append(mr.list, m)
	}
	return mr, rows.Err()
}

// fillMACs appends rows of (machine_id, mac), in position order, to the
// machines they belong to.
func (mr machineRows) fillMACs(rows rowScanner) error {
	for rows.Next() {
		var id int64
		var mac string
		if err := rows.Scan(&id, &mac); err != nil {
			return err
		}
		if i, ok := mr.idx[id]; ok {
			mr.list[i].MACs = append(mr.list[i].MACs, mac)
		}
	}
	return rows.Err()
}

// fillTags sets rows of (machine_id, key, value) on the machines they
// belong to.
func (mr machineRows) fillTags(rows rowScanner) error {
	for rows.Next() {
		var id int64
		var k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return err
		}
		if i, ok := mr.idx[id]; ok {
			if mr.list[i].Tags == nil {
				mr.list[i].Tags = map[string]string{}
			}
			mr.list[i].Tags[k] = v
		}
	}
	return rows.Err()
}

// scanStateCounts reads rows of (state, count).
func scanStateCounts(rows rowScanner) (map[State]int, error) {
	out := map[State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[State(st)] = n
	}
	return out, rows.Err()
}

const leaseCols = `mac, ip, hostname, state, expires_at, updated_at`

func scanLease(sc scanner) (Lease, error) {
	var l Lease
	var e, u int64
	if err := sc.Scan(&l.MAC, &l.IP, &l.Hostname, &l.State, &e, &u); err != nil {
		return Lease{}, err
	}
	l.ExpiresAt, l.UpdatedAt = fromNano(e), fromNano(u)
	return l, nil
}

const imageCols = `name, file, format, chain, size, virtual_size, sha256, raw_sha256, created_at`

func scanImage(sc scanner) (Image, error) {
	var img Image
	var chain string
	var c int64
	if err := sc.Scan(&img.Name, &img.File, &img.Format, &chain, &img.Size, &img.VirtualSize, &img.SHA256, &img.RawSHA256, &c); err != nil {
		return Image{}, err
	}
	if chain != "" {
		img.Chain = strings.Split(chain, ",")
	}
	img.CreatedAt = fromNano(c)
	return img, nil
}

const tokenCols = `id, name, created_at, last_used_at, revoked_at`

func scanToken(sc scanner) (Token, error) {
	var t Token
	var c, u, r int64
	if err := sc.Scan(&t.ID, &t.Name, &c, &u, &r); err != nil {
		return Token{}, err
	}
	t.CreatedAt, t.LastUsedAt, t.Revoked = fromNano(c), fromNano(u), r != 0
	return t, nil
}

const eventCols = `id, time, machine, mac, type, message, data`

func scanEvent(sc scanner) (Event, error) {
	var e Event
	var t int64
	var data string
	if err := sc.Scan(&e.ID, &t, &e.Machine, &e.MAC, &e.Type, &e.Message, &data); err != nil {
		return Event{}, err
	}
	e.Time = fromNano(t)
	if err := decodeEventData(&e, data); err != nil {
		return Event{}, err
	}
	return e, nil
}
