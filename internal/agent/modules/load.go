package modules

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// ErrUnresolved is what an InsertFunc returns when the module needs a
// symbol no loaded module exports yet (finit_module's ENOENT); the Loader
// retries such modules in a later pass.
var ErrUnresolved = errors.New("unresolved symbol")

// InsertFunc loads the module file at path; it returns nil when the
// module is already loaded.
type InsertFunc func(path string) error

// Loader loads the modules that the devices in sysfs ask for.
type Loader struct {
	// Dir is /lib/modules/<release>.
	Dir string
	// SysRoot is the sysfs mount, "/sys".
	SysRoot string
	// Insert loads one module; FinitModule on Linux.
	Insert InsertFunc
	Log    *slog.Logger
	// Settle is how long to wait for new devices after a round of loads;
	// Rounds bounds the rounds.
	Settle time.Duration
	Rounds int
	// ProcModules names /proc/modules, whose modules count as loaded;
	// empty reads none.
	ProcModules string

	aliases *AliasIndex
	deps    Deps
	loaded  map[string]bool
	failed  map[string]error
	seen    map[string]bool
}

// Open reads modules.alias and modules.dep from l.Dir.
func (l *Loader) Open() error {
	fa, err := os.Open(filepath.Join(l.Dir, "modules.alias"))
	if err != nil {
		return fmt.Errorf("open modules.alias: %w", err)
	}
	defer fa.Close()
	if l.aliases, err = ParseAliases(fa); err != nil {
		return err
	}
	fd, err := os.Open(filepath.Join(l.Dir, "modules.dep"))
	if err != nil {
		return fmt.Errorf("open modules.dep: %w", err)
	}
	defer fd.Close()
	if l.deps, err = ParseDeps(fd); err != nil {
		return err
	}
	l.loaded, l.failed = map[string]bool{}, map[string]error{}
	return l.openDefaults()
}

func (l *Loader) openDefaults() error {
	if l.Log == nil {
		l.Log = slog.New(slog.DiscardHandler)
	}
	if l.Rounds <= 0 {
		l.Rounds = 10
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	return nil
}

// Modaliases lists the modalias strings of every device under
// sysRoot/bus/*/devices/*, sorted.
func Modaliases(sysRoot string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(sysRoot, "bus", "*", "devices", "*", "modalias"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // device went away, or unreadable: skip
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Wanted returns the modules that the given modaliases match, in
// dependency order, without those already loaded or failed.
func (l *Loader) Wanted(aliases []string) []string {
	var want []string
	for _, a := range aliases {
		for _, m := range l.aliases.Match(a) {
			if _, ok := l.deps[m]; ok && !l.loaded[m] && l.failed[m] == nil {
				want = append(want, m)
			}
		}
	}
	order, err := l.deps.Order(want...)
	if err != nil {
		l.Log.Warn("module dependencies", "err", err)
		return want
	}
	return order
}

// LoadAll loads names (dependency-ordered) with Insert, retrying those
// that fail with ErrUnresolved in further passes while a pass makes
// progress. It returns the modules loaded.
func (l *Loader) LoadAll(names []string) []string {
	var done []string
	pending := names
	for len(pending) > 0 {
		var retry []string
		progress := false
		for _, n := range pending {
			if l.loaded[n] {
				continue
			}
			err := l.Insert(filepath.Join(l.Dir, l.deps[n].Path))
			switch {
			case err == nil:
				l.loaded[n] = true
				done = append(done, n)
				progress = true
				l.Log.Debug("module loaded", "module", n)
			case errors.Is(err, ErrUnresolved):
				retry = append(retry, n)
			default:
				l.failed[n] = err
				l.Log.Warn("module load failed", "module", n, "err", err)
			}
		}
		if !progress {
			for _, n := range retry {
				l.failed[n] = fmt.Errorf("load %s: %w", n, ErrUnresolved)
				l.Log.Warn("module load failed", "module", n, "err", ErrUnresolved)
			}
			break
		}
		pending = retry
	}
	return done
}

// Run loads modules for the devices present, then again for devices those
// modules exposed, until a round finds no new device or Rounds is reached.
func (l *Loader) Run(ctx context.Context) ([]string, error) {
	if l.aliases == nil {
		if err := l.Open(); err != nil {
			return nil, err
		}
	}
	l.markLoaded()
	var all []string
	quiet := 0
	for round := 0; round < l.Rounds && quiet < 2; round++ {
		mas, err := Modaliases(l.SysRoot)
		if err != nil {
			return all, err
		}
		var fresh []string
		for _, m := range mas {
			if !l.seen[m] {
				l.seen[m] = true
				fresh = append(fresh, m)
			}
		}
		if len(fresh) == 0 {
			quiet++
		} else {
			quiet = 0
			all = append(all, l.LoadAll(l.Wanted(fresh))...)
		}
		if l.Settle > 0 {
			select {
			case <-ctx.Done():
				return all, ctx.Err()
			case <-time.After(l.Settle):
			}
		}
	}
	return all, nil
}

// markLoaded records the modules listed in ProcModules.
func (l *Loader) markLoaded() {
	if l.ProcModules == "" {
		return
	}
	f, err := os.Open(l.ProcModules)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n, _, ok := strings.Cut(sc.Text(), " "); ok {
			l.loaded[Name(n)] = true
		}
	}
}

// mapInsertErr turns finit_module errors into the Loader's terms.
func mapInsertErr(path string, err error) error {
	switch {
	case err == nil, errors.Is(err, syscall.EEXIST):
		return nil
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("load %s: %w", path, ErrUnresolved)
	}
	return fmt.Errorf("load %s: %w", path, err)
}
