package imagecli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/pkg/imaging"
)

// NewConvertCmd returns `image convert FILE|- OUT`.
func NewConvertCmd() *cobra.Command {
	var of openFlags
	var force, noProgress, noHash, rawHash bool
	var manifestOut string
	cmd := &cobra.Command{
		Use:   "convert FILE|DIR|- OUT",
		Short: "Convert a disk image to a raw disk offline (file or block device)",
		Long: `Convert streams a disk image (a file, stdin for "-", or an unpacked OVF
package given as its directory or .ovf descriptor) into the raw disk it
describes, exactly as metal-agent writes it, and prints the raw disk's size
and its chunk digest: the disk in 4 MiB chunks, each hashed with SHA-256
in a stage of its own as the conversion writes it (or found to be zeros,
holes never hashed), the list hashed again — the content digest metald
records at upload, for a fraction of the conversion's time. --sha256 adds the SHA-256 of the
whole raw disk (equal to sha256sum of ` + "`qemu-img convert -O raw`" + `, and
with it the manifest digest metald serves); it reads every byte, holes
included, on one core. --manifest writes the chunk manifest as JSON.

OUT may be a new file or an existing regular file, which is replaced only
when the conversion succeeded: the output is written next to it under a
temporary name and renamed at the end, so a refused or failed image leaves
nothing behind. A block device is written in place and only with --force.
A progress bar is drawn when stderr is a terminal.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := of.options()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return convert(ctx, cmd, args[0], args[1], opts, convertFlags{force: force, progress: !noProgress, hash: rawHash,
				chunks: !noHash, manifest: manifestOut})
		},
	}
	of.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "allow OUT to be a block device (its contents are overwritten)")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "never draw a progress bar")
	cmd.Flags().BoolVar(&rawHash, "sha256", false, "also compute the SHA-256 of the whole raw disk (what sha256sum of qemu-img's raw output prints; one core over every byte)")
	cmd.Flags().StringVar(&manifestOut, "manifest", "", "write the chunk manifest (JSON, as metald serves it at /images/NAME/manifest) to this file")
	cmd.Flags().BoolVar(&noHash, "no-digest", false, "compute no digest at all")
	cmd.Flags().BoolVar(&noHash, "no-sha256", false, "")
	_ = cmd.Flags().MarkDeprecated("no-sha256", "the raw SHA-256 is computed only with --sha256; use --no-digest to skip the chunk digest too")
	return cmd
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// target is where convert writes: a temporary file renamed over path at
// the end, or a block device written in place.
type target struct {
	path  string // resolved OUT
	f     *os.File
	tmp   string // temporary name for files; "" for devices
	mode  os.FileMode
	block bool
}

func openTarget(out, in string, force bool) (*target, error) {
	if out == "-" {
		return nil, fmt.Errorf("OUT must be a file or block device: a raw disk is written with holes, not to stdout")
	}
	path := out
	if r, err := filepath.EvalSymlinks(out); err == nil {
		path = r
	}
	st, err := os.Stat(path)
	t := &target{path: path, mode: 0o644}
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return nil, err
	case st.Mode().IsRegular():
		t.mode = st.Mode().Perm()
		if in != "-" {
			if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) {
				return nil, fmt.Errorf("%s is the input file", out)
			}
		}
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		if !force {
			return nil, fmt.Errorf("%s is a block device: its contents would be overwritten; pass --force to do so", out)
		}
		f, err := imaging.OpenTarget(path)
		if err != nil {
			return nil, err
		}
		t.f, t.block = f, true
		return t, nil
	default:
		return nil, fmt.Errorf("%s is a %s, not a regular file or block device", out, kindOf(st.Mode()))
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".metal-*")
	if err != nil {
		return nil, err
	}
	t.f, t.tmp = f, f.Name()
	return t, nil
}

func kindOf(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// abort discards a temporary file; a device is left as it is.
func (t *target) abort() {
	t.f.Close()
	if t.tmp != "" {
		os.Remove(t.tmp)
	}
}

func (t *target) commit() error {
	if t.tmp == "" {
		return t.f.Close()
	}
	if err := t.f.Chmod(t.mode); err != nil {
		t.abort()
		return err
	}
	if err := t.f.Close(); err != nil {
		os.Remove(t.tmp)
		return err
	}
	if err := os.Rename(t.tmp, t.path); err != nil {
		os.Remove(t.tmp)
		return err
	}
	return nil
}

type convertFlags struct {
	force, progress, hash bool
	chunks                bool   // read the output back as a chunk manifest
	manifest              string // write it here
}

func convert(ctx context.Context, cmd *cobra.Command, in, out string, opts imaging.Options, cf convertFlags) error {
	t, err := openTarget(out, in, cf.force)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	fail := func(err error) error {
		t.abort()
		if t.block {
			return fmt.Errorf("convert %s: %w (the block device %s was partly written: consider its contents garbage)", in, err, out)
		}
		return fmt.Errorf("convert %s: %w; nothing written to %s", in, err, out)
	}
	src, err := openImage(cmd, in, opts)
	if err != nil {
		return fail(err)
	}
	defer src.close()
	s := src.s
	wo := imaging.WriteOptions{Input: src.count, SkipHash: !cf.hash}
	var bar *progressBar
	if cf.progress {
		bar = newProgressBar(cmd.ErrOrStderr(), s.Info().VirtualSize)
	}
	if bar != nil {
		wo.Progress, wo.Interval = bar.update, 200*time.Millisecond
	}
	if cf.chunks {
		wo.ChunkSize = imaging.DefaultChunkSize
	}
	res, err := imaging.Write(ctx, s, t.f, wo)
	man := res.Manifest
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return fail(err)
	}
	if err := t.commit(); err != nil {
		return fmt.Errorf("convert: finishing %s: %w", out, err)
	}
	if man != nil && cf.manifest != "" {
		b, _ := json.Marshal(man)
		if err := os.WriteFile(cf.manifest, b, 0o644); err != nil {
			return fmt.Errorf("convert: --manifest: %w", err)
		}
	}
	printResult(cmd.OutOrStdout(), out, res, man)
	return nil
}

func printResult(w io.Writer, out string, r imaging.Result, m *imaging.Manifest) {
	fmt.Fprintf(w, "%s: %d bytes raw (%s; data %s, zeros %s, holes %s) from %s in %s\n",
		out, r.Size, human(r.Size), human(r.DataBytes), human(r.ZeroBytes), human(r.HoleBytes),
		joinChain(r.Info.Chain), r.Duration.Round(time.Millisecond))
	if m != nil {
		data := 0
		for _, d := range m.Chunks {
			if d != "" {
				data++
			}
		}
		fmt.Fprintf(w, "chunks: %s (%d of %s, %d with data)\n", m.ContentDigest(), len(m.Chunks), human(m.ChunkSize), data)
		if r.SHA256 != "" {
			fmt.Fprintf(w, "manifest: %s\n", m.Digest())
		}
	}
	if r.SHA256 != "" {
		fmt.Fprintf(w, "sha256: %s\n", r.SHA256)
	}
}

func joinChain(c []string) string {
	s := ""
	for i, x := range c {
		if i > 0 {
			s += " > "
		}
		s += x
	}
	return s
}
