// Package modules decides which kernel modules the hardware asks for and
// loads them: device modaliases from sysfs are matched against
// modules.alias, dependencies come from modules.dep, and modules are loaded
// with finit_module in dependency order.
package modules

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Alias is one "alias PATTERN MODULE" line of modules.alias.
type Alias struct {
	Pattern string
	Module  string
}

// AliasIndex matches modaliases against the patterns of modules.alias.
type AliasIndex struct {
	// byPrefix groups aliases by the part of the pattern before the first
	// ':' (the bus: "pci", "virtio", "scsi"...), which is always literal.
	byPrefix map[string][]Alias
}

// ParseAliases reads modules.alias. Lines that are not "alias P M" are
// skipped (comments, blank lines); a malformed alias line is an error.
func ParseAliases(r io.Reader) (*AliasIndex, error) {
	ix := &AliasIndex{byPrefix: map[string][]Alias{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "alias" {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("modules.alias line %d: want \"alias PATTERN MODULE\", got %q", line, sc.Text())
		}
		a := Alias{Pattern: f[1], Module: Name(f[2])}
		ix.byPrefix[bus(a.Pattern)] = append(ix.byPrefix[bus(a.Pattern)], a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.alias: %w", err)
	}
	return ix, nil
}

func bus(s string) string {
	if i := strings.IndexAny(s, ":*?["); i >= 0 && s[i] == ':' {
		return s[:i]
	}
	return ""
}

// Match returns the modules whose alias patterns match modalias, each once,
// in file order.
func (ix *AliasIndex) Match(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	for _, group := range [][]Alias{ix.byPrefix[bus(modalias)], ix.byPrefix[""]} {
		for _, a := range group {
			if !seen[a.Module] && Glob(a.Pattern, modalias) {
				seen[a.Module] = true
				out = append(out, a.Module)
			}
		}
	}
	return out
}

// Len is the number of aliases indexed.
func (ix *AliasIndex) Len() int {
	n := 0
	for _, g := range ix.byPrefix {
		n += len(g)
	}
	return n
}

// Glob reports whether s matches the fnmatch(3) pattern p (no flags): '*'
// any run, '?' one byte, "[...]" a set with ranges and leading '!' or '^'
// negation. Unlike path.Match, '/' is an ordinary byte.
func Glob(p, s string) bool {
	// Iterative matcher with backtracking to the last '*'.
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				pi++
				si++
				continue
			case '[':
				if ok, next, valid := matchSet(p, pi, s[si]); valid {
					if ok {
						pi, si = next, si+1
						continue
					}
				} else if s[si] == '[' { // unterminated set: literal '['
					pi++
					si++
					continue
				}
			default:
				if p[pi] == s[si] {
					pi++
					si++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchSet matches c against the set starting at p[i] == '['. It returns
// whether c is in the set, the index after the set, and whether the set is
// well formed.
func matchSet(p string, i int, c byte) (ok bool, next int, valid bool) {
	j := i + 1
	neg := false
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		neg = true
		j++
	}
	first := true
	for j < len(p) && (first || p[j] != ']') {
		first = false
		lo := p[j]
		hi := lo
		if j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']' {
			hi = p[j+2]
			j += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
		j++
	}
	if j >= len(p) {
		return false, 0, false
	}
	return ok != neg, j + 1, true
}
