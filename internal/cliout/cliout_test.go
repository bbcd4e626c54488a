package cliout

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
)

func TestRender(t *testing.T) {
	v := map[string]any{"virtual_size": int64(25165824), "name": "disk"}
	cases := map[string]string{
		"json":  `"virtual_size": 25165824`,
		"yaml":  "virtual_size: 25165824",
		"table": "disk  25165824",
	}
	for format, want := range cases {
		var b bytes.Buffer
		err := Render(&b, format, v, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s\t%d\n", v["name"], v["virtual_size"]) })
		if err != nil || !strings.Contains(b.String(), want) {
			t.Errorf("%s: %v %q, want %q", format, err, b.String(), want)
		}
	}
	if err := Render(&bytes.Buffer{}, "xml", v, nil); err == nil {
		t.Error("unknown format accepted")
	}
}
