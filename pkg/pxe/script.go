package pxe

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/template"
)

// ErrUnknownTarget means a boot target has no script.
var ErrUnknownTarget = errors.New("pxe: no boot script for target")

// Script names in the templates file system.
const (
	ScriptAgent       = "agent.ipxe"
	ScriptLocalBoot   = "localboot.ipxe"
	ScriptMaintenance = "maintenance.ipxe"
)

// Target is what a machine boots into. Which target a machine state gets
// is the lifecycle's decision (pkg/inventory, State.Boot); the consumer
// passes the target in and pxe renders its script.
type Target string

// Targets, named as the lifecycle names its boots.
const (
	TargetAgent       Target = "agent"       // the stage-2 agent
	TargetLocal       Target = "local"       // the local disk
	TargetMaintenance Target = "maintenance" // nothing: stop here
)

// ScriptFor maps a boot target to its template:
//
//	agent       → agent.ipxe
//	local       → localboot.ipxe
//	maintenance → maintenance.ipxe
func ScriptFor(t Target) (string, error) {
	switch t {
	case TargetAgent:
		return ScriptAgent, nil
	case TargetLocal:
		return ScriptLocalBoot, nil
	case TargetMaintenance:
		return ScriptMaintenance, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownTarget, t)
}

// ScriptData is what a template sees. Every field is made safe for an
// iPXE command line before rendering (see safe).
type ScriptData struct {
	Target Target // which script: the lifecycle's boot for the state
	MAC    string // the MAC the script was requested for
	Name   string // machine name
	State  string // machine state
	URL    string // advertise URL, no trailing slash
	Token  string // agent token, or a placeholder until the agent exists

	// AgentURL is the base URL the agent talks to (metal.url): https://
	// when metald serves TLS, which iPXE need not speak. Default URL.
	AgentURL string
}

// Renderer renders boot scripts from a templates file system.
type Renderer struct {
	t *template.Template
}

// NewRenderer parses every *.ipxe template in fsys.
func NewRenderer(fsys fs.FS) (*Renderer, error) {
	t, err := template.New("").Option("missingkey=error").ParseFS(fsys, "*.ipxe")
	if err != nil {
		return nil, fmt.Errorf("pxe: parse templates: %w", err)
	}
	for _, n := range []string{ScriptAgent, ScriptLocalBoot, ScriptMaintenance} {
		if t.Lookup(n) == nil {
			return nil, fmt.Errorf("pxe: template %s missing", n)
		}
	}
	return &Renderer{t: t}, nil
}

// Render writes the script of boot target d.Target.
func (r *Renderer) Render(w io.Writer, d ScriptData) error {
	name, err := ScriptFor(d.Target)
	if err != nil {
		return err
	}
	if err := r.t.ExecuteTemplate(w, name, d.clean()); err != nil {
		return fmt.Errorf("pxe: render %s: %w", name, err)
	}
	return nil
}

// clean is d with every field made safe for a boot script's command
// line (the iPXE scripts' and GRUB's alike) and AgentURL defaulted to URL.
func (d ScriptData) clean() ScriptData {
	if d.AgentURL == "" {
		d.AgentURL = d.URL
	}
	return ScriptData{Target: d.Target, MAC: safe(d.MAC), Name: safe(d.Name), State: safe(d.State),
		URL: safeURL(strings.TrimRight(d.URL, "/")), AgentURL: safeURL(strings.TrimRight(d.AgentURL, "/")), Token: safe(d.Token)}
}

// safe keeps letters, digits and . _ : - so that inventory data cannot
// inject iPXE commands, settings expansions (${…}) or extra arguments.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == ':', r == '-':
			return r
		}
		return '_'
	}, s)
}

// safeURL additionally keeps the characters of an http URL without spaces,
// quotes or $.
func safeURL(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("/?=&%[]@+~,", r) {
			return r
		}
		if c := safe(string(r)); c == string(r) {
			return r
		}
		return '_'
	}, s)
}
