package modules

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// Dep is one module of modules.dep.
type Dep struct {
	// Path is relative to /lib/modules/<release>.
	Path string
	// Deps are module names this one needs, as modules.dep lists them.
	Deps []string
}

// Deps maps module names (underscored, see Name) to their entries.
type Deps map[string]Dep

// Name turns a module path or name into its canonical name: base name
// without .ko[.xz|.zst|.gz], '-' replaced by '_'.
func Name(p string) string {
	b := path.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, ext)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// ParseDeps reads modules.dep ("path: dep-path dep-path ...").
func ParseDeps(r io.Reader) (Deps, error) {
	d := Deps{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		mod, rest, ok := strings.Cut(t, ":")
		if !ok || mod == "" {
			return nil, fmt.Errorf("modules.dep line %d: want \"path: deps\", got %q", line, t)
		}
		e := Dep{Path: mod}
		for _, f := range strings.Fields(rest) {
			e.Deps = append(e.Deps, Name(f))
		}
		d[Name(mod)] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return d, nil
}

// Order returns names and everything they depend on, each once, every
// module after all of its dependencies. Unknown names are an error.
func (d Deps) Order(names ...string) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, from string) error
	visit = func(n, from string) error {
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle through %s", n)
		}
		e, ok := d[n]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) not in modules.dep", n, from)
			}
			return fmt.Errorf("module %s not in modules.dep", n)
		}
		state[n] = 1
		// modules.dep lists the deepest dependencies last; visit in
		// reverse so that they come first where there is no constraint.
		for i := len(e.Deps) - 1; i >= 0; i-- {
			if err := visit(e.Deps[i], n); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, n)
		return nil
	}
	for _, n := range names {
		if err := visit(Name(n), ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}
