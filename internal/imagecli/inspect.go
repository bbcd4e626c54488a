package imagecli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/pkg/imaging"
)

// Report is what `image inspect` prints.
type Report struct {
	File        string   `json:"file"`
	Format      string   `json:"format"`
	Subformat   string   `json:"subformat,omitempty"`
	Chain       []string `json:"chain"`
	VirtualSize int64    `json:"virtual_size"`
	// InputBytes is how much of the input was read: the whole image, or
	// only its headers with --quick; -1 for an unpacked OVF directory.
	InputBytes int64 `json:"input_bytes"`
	// Allocation is absent with --quick: it needs the whole stream.
	Allocation *Allocation          `json:"allocation,omitempty"`
	Package    *imaging.PackageInfo `json:"package,omitempty"`
}

// Allocation sums the extents of the raw disk.
type Allocation struct {
	// DataBytes is the sum of data extents: the allocated bytes.
	DataBytes   int64 `json:"data_bytes"`
	DataExtents int64 `json:"data_extents"`
	// ZeroBytes are ranges the image marks as zeros; HoleBytes are
	// ranges it leaves unallocated (both read as zeros).
	ZeroBytes int64 `json:"zero_bytes"`
	HoleBytes int64 `json:"hole_bytes"`
}

// NewInspectCmd returns `image inspect FILE|-`. The output format (table,
// json, yaml) is read from *output when the command runs; the root command
// owns the -o flag.
func NewInspectCmd(output *string) *cobra.Command {
	var of openFlags
	var quick bool
	cmd := &cobra.Command{
		Use:   "inspect FILE|DIR|-",
		Short: "Describe a disk image offline: format chain, virtual size, allocation, OVA disks",
		Long: `Inspect reads a disk image (a file, stdin for "-", or an unpacked OVF
package given as its directory or .ovf descriptor) front to back, the
way metal-agent will, and reports its format chain (compression layers
outermost first), virtual size and how much of it is data, zeros and holes.
For an OVA it lists the package's disks and the manifest and certificate
status. The whole image is read to count allocation and verify manifests;
--quick stops after the headers. No metald is needed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := of.options()
			if err != nil {
				return err
			}
			rep, err := inspect(cmd, args[0], opts, quick)
			if err != nil {
				return err
			}
			format := "table"
			if output != nil && *output != "" {
				format = *output
			}
			return renderReport(cmd.OutOrStdout(), format, rep)
		},
	}
	of.register(cmd)
	cmd.Flags().BoolVar(&quick, "quick", false, "read only the headers: no allocation totals, no manifest verification")
	return cmd
}

func inspect(cmd *cobra.Command, name string, opts imaging.Options, quick bool) (*Report, error) {
	src, err := openImage(cmd, name, opts)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	defer src.close()
	s := src.s
	rep := &Report{File: name}
	if !quick {
		a, err := allocation(s)
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", name, err)
		}
		rep.Allocation = a
	}
	info := s.Info() // after the stream: manifest status and sizes are final
	rep.Format, rep.Subformat, rep.Chain = info.Format, info.Subformat, info.Chain
	rep.VirtualSize, rep.Package = info.VirtualSize, info.Package
	rep.InputBytes = src.inputBytes()
	if a := rep.Allocation; a != nil {
		if rep.VirtualSize < 0 {
			rep.VirtualSize = a.DataBytes + a.ZeroBytes + a.HoleBytes
		} else {
			a.HoleBytes = rep.VirtualSize - a.DataBytes - a.ZeroBytes
		}
	}
	return rep, nil
}

// allocation drains the stream, summing extents; ranges between extents
// count as holes (the caller fixes up the tail against the virtual size).
func allocation(s imaging.Stream) (*Allocation, error) {
	a := &Allocation{}
	var pos int64
	for {
		e, err := s.Next()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return nil, err
		}
		if e.Offset < pos {
			return nil, fmt.Errorf("extent at %d precedes offset %d", e.Offset, pos)
		}
		a.HoleBytes += e.Offset - pos
		switch e.Kind {
		case imaging.KindData:
			a.DataBytes += e.Length
			a.DataExtents++
		case imaging.KindZero:
			a.ZeroBytes += e.Length
		default:
			a.HoleBytes += e.Length
		}
		pos = e.Offset + e.Length
	}
}
