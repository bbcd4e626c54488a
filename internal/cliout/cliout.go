// Package cliout renders command output the same way in every metal CLI
// command: -o json (indented), -o yaml (the JSON field names, integers kept
// as integers), or a table drawn by the command.
package cliout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// Render prints v as JSON or YAML, or calls table with an aligned writer
// for the table format ("" counts as table).
func Render(w io.Writer, format string, v any, table func(*tabwriter.Writer)) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		// Round-trip through JSON so YAML shows the same field names.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var generic any
		if err := dec.Decode(&generic); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(integers(generic)); err != nil {
			return err
		}
		return enc.Close()
	case "table", "":
		if table == nil {
			return fmt.Errorf("this command has no table output: use -o json or -o yaml")
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	return fmt.Errorf("output format %q: want table, json or yaml", format)
}

// integers turns json.Numbers back into int64 (or float64) so YAML prints
// 25165824, not 2.5165824e+07.
func integers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = integers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
