package pxe

import (
	"fmt"
	"io"
	"io/fs"
	"text/template"
)

// GRUB configuration templates in the templates file system, one per boot
// target like the iPXE scripts.
const (
	GrubAgent       = "agent.grub"
	GrubLocalBoot   = "localboot.grub"
	GrubMaintenance = "maintenance.grub"
)

// GrubFor maps a boot target to its GRUB template:
//
//	agent       → agent.grub
//	local       → localboot.grub
//	maintenance → maintenance.grub
func GrubFor(t Target) (string, error) {
	switch t {
	case TargetAgent:
		return GrubAgent, nil
	case TargetLocal:
		return GrubLocalBoot, nil
	case TargetMaintenance:
		return GrubMaintenance, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownTarget, t)
}

// GrubRenderer renders a machine's GRUB configuration (GrubMachinePrefix)
// from the same ScriptData as the iPXE scripts, made safe the same way:
// only letters, digits and . _ : - in names, and URLs (single-quoted in
// the templates) without quotes, spaces or $.
type GrubRenderer struct {
	t *template.Template
}

// NewGrubRenderer parses every *.grub template in fsys.
func NewGrubRenderer(fsys fs.FS) (*GrubRenderer, error) {
	t, err := template.New("").Option("missingkey=error").ParseFS(fsys, "*.grub")
	if err != nil {
		return nil, fmt.Errorf("pxe: parse grub templates: %w", err)
	}
	for _, n := range []string{GrubAgent, GrubLocalBoot, GrubMaintenance} {
		if t.Lookup(n) == nil {
			return nil, fmt.Errorf("pxe: template %s missing", n)
		}
	}
	return &GrubRenderer{t: t}, nil
}

// Render writes the GRUB configuration of boot target d.Target.
func (r *GrubRenderer) Render(w io.Writer, d ScriptData) error {
	name, err := GrubFor(d.Target)
	if err != nil {
		return err
	}
	if err := r.t.ExecuteTemplate(w, name, d.clean()); err != nil {
		return fmt.Errorf("pxe: render %s: %w", name, err)
	}
	return nil
}
