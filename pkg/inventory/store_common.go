package inventory

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"
)

// This file holds the logic both stores (SQLite and PostgreSQL) share:
// input preparation, the events every state change writes, token
// formats and the WaitEvents wake-up. The stores differ only in SQL.

// prepareMachine validates a machine to create and returns it with its
// normalised MACs, IP and initial state.
func prepareMachine(m Machine) (Machine, error) {
	if err := ValidateName("name", m.Name); err != nil {
		return Machine{}, err
	}
	macs, err := NormalizeMACs(m.MACs)
	if err != nil {
		return Machine{}, err
	}
	if m.IP, err = NormalizeIP(m.IP); err != nil {
		return Machine{}, err
	}
	if m.IP6, err = NormalizeIP6(m.IP6); err != nil {
		return Machine{}, err
	}
	if err := ValidateTags(m.Tags); err != nil {
		return Machine{}, err
	}
	if m.State == "" {
		m.State = StateNew
	}
	if m.State != StateNew && m.State != StateDiscovered {
		return Machine{}, fmt.Errorf("%w: state: a machine is created as new or discovered, not %q", ErrInvalid, m.State)
	}
	m.MACs = macs
	return m, nil
}

// prepareLease validates a lease to store and returns it with its MAC and
// IP normalised.
func prepareLease(l Lease) (Lease, error) {
	mac, err := NormalizeMAC(l.MAC)
	if err != nil {
		return Lease{}, err
	}
	if l.IP, err = NormalizeIP(l.IP); err != nil || l.IP == "" {
		return Lease{}, fmt.Errorf("%w: lease ip %q", ErrInvalid, l.IP)
	}
	l.MAC = mac
	return l, nil
}

// prepareImage validates an image to store; one without a creation time
// is created now.
func prepareImage(img Image, clock func() time.Time) (Image, error) {
	if err := ValidateName("image name", img.Name); err != nil {
		return Image{}, err
	}
	if img.CreatedAt.IsZero() {
		img.CreatedAt = clock()
	}
	return img, nil
}

// sealBMC validates a BMC URL and returns the masked form shown to users
// and the sealed form holding the credentials.
func sealBMC(sealer *Sealer, raw string) (string, []byte, error) {
	if raw == "" {
		return "", nil, nil
	}
	if err := ValidateBMCURL(raw); err != nil {
		return "", nil, err
	}
	return RedactURL(raw), sealer.Seal([]byte(raw)), nil
}

// openBMC unseals a machine's stored BMC URL (empty: it has none).
func openBMC(sealer *Sealer, name string, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", fmt.Errorf("%w: machine %q has no BMC", ErrNotFound, name)
	}
	pt, err := sealer.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("machine %q: %w", name, err)
	}
	return string(pt), nil
}

// colSet is one column a patch writes; listed columns are named in the
// machine.updated event.
type colSet struct {
	col    string
	val    any
	listed bool
}

// preparedPatch is a validated MachinePatch.
type preparedPatch struct {
	macs    []string // nil: unchanged
	setMACs bool
	checkIP bool
	ip      string
	ip6     *string // nil: unchanged
	cols    []colSet
	tags    map[string]string
}

// preparePatch validates every field of a patch before anything is
// written and lists the column writes in a fixed order.
func preparePatch(sealer *Sealer, p MachinePatch) (preparedPatch, error) {
	var pp preparedPatch
	var err error
	if p.MACs != nil {
		if pp.macs, err = NormalizeMACs(*p.MACs); err != nil {
			return pp, err
		}
		pp.setMACs = true
	}
	if p.IP != nil {
		if pp.ip, err = NormalizeIP(*p.IP); err != nil {
			return pp, err
		}
		pp.checkIP = true
	}
	if p.IP6 != nil {
		v, err := NormalizeIP6(*p.IP6)
		if err != nil {
			return pp, err
		}
		pp.ip6 = &v
	}
	if err := ValidateTags(p.Tags); err != nil {
		return pp, err
	}
	if p.IP != nil {
		pp.cols = append(pp.cols, colSet{"ip", pp.ip, true})
	}
	if pp.ip6 != nil {
		pp.cols = append(pp.cols, colSet{"ip6", *pp.ip6, true})
	}
	if p.UUID != nil {
		pp.cols = append(pp.cols, colSet{"uuid", strings.TrimSpace(*p.UUID), true})
	}
	if p.Serial != nil {
		pp.cols = append(pp.cols, colSet{"serial", strings.TrimSpace(*p.Serial), true})
	}
	if p.BMC != nil {
		shown, sealed, err := sealBMC(sealer, *p.BMC)
		if err != nil {
			return pp, err
		}
		pp.cols = append(pp.cols, colSet{"bmc_url", shown, true}, colSet{"bmc_sealed", sealed, false})
	}
	if p.UEFIBoot != nil {
		v, err := NormalizeUEFIBoot(*p.UEFIBoot)
		if err != nil {
			return pp, err
		}
		pp.cols = append(pp.cols, colSet{"uefi_boot", v, true})
	}
	if p.Hardware != nil {
		pp.cols = append(pp.cols, colSet{"hardware", string(p.Hardware), true})
	}
	if p.PowerState != nil {
		pp.cols = append(pp.cols, colSet{"power_state", *p.PowerState, true})
	}
	if p.PowerAt != nil {
		pp.cols = append(pp.cols, colSet{"power_checked_at", unixNano(*p.PowerAt), true})
	}
	if len(p.Tags) > 0 {
		pp.tags = p.Tags
	}
	return pp, nil
}

// changed lists the fields a prepared patch changes, as the event names
// them.
func (pp preparedPatch) changed() []string {
	var out []string
	for _, c := range pp.cols {
		if c.listed {
			out = append(out, c.col)
		}
	}
	if pp.setMACs {
		out = append(out, "macs")
	}
	if pp.tags != nil {
		out = append(out, "tags")
	}
	return out
}

func onlyPower(cols []string) bool {
	for _, c := range cols {
		if c != "power_state" && c != "power_checked_at" {
			return false
		}
	}
	return true
}

func jobLimit(n int) int {
	if n <= 0 || n > 1000 {
		return 1000
	}
	return n
}

// newJobToken returns a fresh agent task token.
func newJobToken() (string, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return "mt_" + hex.EncodeToString(raw), nil
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func checkJob(j Job) error {
	if j.Kind == "" || j.Machine == "" {
		return fmt.Errorf("%w: job needs a machine and a kind", ErrInvalid)
	}
	return nil
}

// tokenPrefix makes metal tokens recognisable in logs and secret scanners.
const tokenPrefix = "metal_"

// newAPIToken returns a token id, its secret, and the secret's hash.
func newAPIToken(name string) (id, secret string, hash []byte, err error) {
	if strings.TrimSpace(name) == "" {
		return "", "", nil, fmt.Errorf("%w: token name must not be empty", ErrInvalid)
	}
	idb := make([]byte, 6)
	sec := make([]byte, 24)
	if _, err := rand.Read(idb); err != nil {
		return "", "", nil, err
	}
	if _, err := rand.Read(sec); err != nil {
		return "", "", nil, err
	}
	secret = hex.EncodeToString(sec)
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(idb), secret, sum[:], nil
}

// formatAPIToken joins metal_<id>_<secret>, the form shown to the user.
func formatAPIToken(id, secret string) string { return tokenPrefix + id + "_" + secret }

// tokenCheckCols are the columns verifyAPIToken reads.
const tokenCheckCols = `id, name, hash, created_at, last_used_at, revoked_at`

// verifyAPIToken reads a token row of tokenCheckCols and checks secret
// against its hash in constant time. A missing, revoked or mismatching
// token is ErrUnauthorized, whatever the reason.
func verifyAPIToken(row scanner, secret string) (Token, error) {
	var t Token
	var hash []byte
	var c, u, r int64
	if err := row.Scan(&t.ID, &t.Name, &hash, &c, &u, &r); err != nil {
		return Token{}, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 || r != 0 {
		return Token{}, ErrUnauthorized
	}
	t.CreatedAt, t.LastUsedAt = fromNano(c), fromNano(u)
	return t, nil
}

// tokenUseDue reports whether a token's use at now should be recorded:
// at most once a minute, so that reads don't become writes.
func tokenUseDue(now time.Time, t Token) bool { return now.Sub(t.LastUsedAt) > time.Minute }

// parseAPIToken splits metal_<id>_<secret>.
func parseAPIToken(s string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || id == "" || secret == "" {
		return "", "", false
	}
	return id, secret, true
}

func jobFinalState(success bool) string {
	if success {
		return JobSucceeded
	}
	return JobFailed
}

const machineCols = `id, name, uuid, serial, state, state_reason, ip, bmc_url, power_state, power_checked_at, hardware, uefi_boot, ip6, created_at, updated_at`

// checkWritableDir creates dir if needed (mode 0700), proves it is
// writable and makes it private (privateDir).
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: cannot create it: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	return privateDir(dir)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func notFound(what, name string) error {
	return fmt.Errorf("%w: %s %q", ErrNotFound, what, name)
}
