package imagecli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/metal-iaas/metal/internal/cliout"
)

// render prints v in the -o format; table draws the table form.
func render(w io.Writer, format string, v any, table func(io.Writer)) error {
	return cliout.Render(w, format, v, func(tw *tabwriter.Writer) { table(tw) })
}

func renderReport(w io.Writer, format string, r *Report) error {
	return render(w, format, r, func(tw io.Writer) {
		format := r.Format
		if r.Subformat != "" {
			format += " (" + r.Subformat + ")"
		}
		fmt.Fprintf(tw, "File:\t%s\n", r.File)
		fmt.Fprintf(tw, "Format:\t%s\n", format)
		fmt.Fprintf(tw, "Chain:\t%s\n", strings.Join(r.Chain, " > "))
		if r.VirtualSize >= 0 {
			fmt.Fprintf(tw, "Virtual size:\t%s (%d bytes)\n", human(r.VirtualSize), r.VirtualSize)
		} else {
			fmt.Fprintf(tw, "Virtual size:\tunknown until the end of the input (use without --quick)\n")
		}
		if a := r.Allocation; a != nil {
			fmt.Fprintf(tw, "Data:\t%s (%d bytes in %d extents)\n", human(a.DataBytes), a.DataBytes, a.DataExtents)
			fmt.Fprintf(tw, "Zeros:\t%s (%d bytes)\n", human(a.ZeroBytes), a.ZeroBytes)
			fmt.Fprintf(tw, "Holes:\t%s (%d bytes)\n", human(a.HoleBytes), a.HoleBytes)
		} else {
			fmt.Fprintf(tw, "Allocation:\tnot counted (--quick)\n")
		}
		if r.InputBytes >= 0 {
			fmt.Fprintf(tw, "Input read:\t%s (%d bytes)\n", human(r.InputBytes), r.InputBytes)
		}
		p := r.Package
		if p == nil {
			return
		}
		fmt.Fprintf(tw, "OVF version:\t%s\n", p.OVFVersion)
		fmt.Fprintf(tw, "Manifest:\t%s\n", orDash(p.Manifest))
		fmt.Fprintf(tw, "Certificate:\t%s\n", orDash(p.Certificate))
		fmt.Fprintf(tw, "Disks:\n")
		fmt.Fprintf(tw, "  \tID\tFILE\tFORMAT\tCAPACITY\tCOMPRESSION\n")
		for _, d := range p.Disks {
			mark := " "
			if d.ID == p.Selected {
				mark = "*"
			}
			comp := orDash(d.Compression)
			if d.ChunkSize > 0 {
				comp += fmt.Sprintf(", %s chunks", human(d.ChunkSize))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", mark, d.ID, d.File, d.Format, human(d.Capacity), comp)
		}
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
