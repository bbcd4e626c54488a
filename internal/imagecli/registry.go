package imagecli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metal-iaas/metal/internal/client"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// Remote is what the registry commands need from metalctl: its client,
// its streams and how it prints an image.
type Remote struct {
	Client      func() (*client.Client, error)
	Out, ErrOut io.Writer
	In          io.Reader
	PrintImage  func(metalapi.Image) error
	// Output is the --output format ("table" prints a line of text).
	Output *string
}

// credFlags are a registry's credentials on the command line.
type credFlags struct {
	creds         string
	passwordStdin bool
	plainHTTP     bool
}

func (f *credFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.creds, "creds", "", "registry credentials USER:PASS (or USER with --password-stdin); without them metald uses its own auth file (REGISTRY_AUTH_FILE, ~/.docker/config.json)")
	cmd.Flags().BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password from stdin (with --creds USER)")
	cmd.Flags().BoolVar(&f.plainHTTP, "plain-http", false, "talk to the registry (or URL) over plain HTTP: no TLS")
}

// userPass resolves the credentials.
func (f *credFlags) userPass(in io.Reader) (user, pass string, err error) {
	user, pass, hasPass := strings.Cut(f.creds, ":")
	if f.passwordStdin {
		if f.creds == "" || hasPass {
			return "", "", errors.New("--password-stdin needs --creds USER (without a password)")
		}
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", "", fmt.Errorf("read password from stdin: %w", err)
		}
		pass = strings.TrimRight(line, "\r\n")
		if pass == "" {
			return "", "", errors.New("--password-stdin: stdin held no password")
		}
		return user, pass, nil
	}
	if f.creds != "" && (!hasPass || user == "") {
		return "", "", errors.New("--creds wants USER:PASS (or USER with --password-stdin)")
	}
	return user, pass, nil
}

// NewImportCmd is `metalctl image import NAME REF`.
func NewImportCmd(r Remote) *cobra.Command {
	var cf credFlags
	var platform string
	var replace bool
	cmd := &cobra.Command{
		Use:   "import NAME REF",
		Short: "Have metald pull an image from an OCI registry (or an https:// URL) and store it as NAME",
		Long: `Import asks metald to pull REF and store it as image NAME, decoded end to
end and refused unless it decodes cleanly, exactly as an upload is. metald
pulls, not metalctl: the registry need only be reachable from metald.

REF is oci://HOST[:PORT]/REPO:TAG, oci://HOST[:PORT]/REPO@sha256:…, or an
https:// URL of an image file. The disk is found in a KubeVirt containerDisk
(a layer holding disk/<file>), an OCI 1.1 artifact or an ORAS push (one
layer that is the disk; its format is detected by magic); of an image
index the linux/amd64 entry is taken unless --platform says otherwise.
See docs/oci.md.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, pass, err := cf.userPass(r.In)
			if err != nil {
				return err
			}
			c, err := r.Client()
			if err != nil {
				return err
			}
			req := metalapi.ImageImport{Ref: args[1], Platform: platform, Username: user, Password: pass,
				PlainHTTP: cf.plainHTTP, Replace: replace}
			var bar *progressbar.ProgressBar
			f, tty := r.ErrOut.(*os.File)
			tty = tty && term.IsTerminal(int(f.Fd()))
			img, err := c.ImportImage(cmd.Context(), args[0], req, func(p metalapi.ImportProgress) {
				if p.Source != "" {
					fmt.Fprintf(r.ErrOut, "pulling %s\n", p.Source)
				}
				if !tty {
					return
				}
				if bar == nil {
					total := p.Total
					if total <= 0 {
						total = -1
					}
					bar = progressbar.DefaultBytes(total, "importing "+args[0])
				}
				_ = bar.Set64(p.Done)
			})
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			return r.PrintImage(img)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&platform, "platform", "", "the entry of an image index to take, OS/ARCH[/VARIANT] (default linux/amd64)")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace an image of the same name")
	return cmd
}

// NewExportCmd is `metalctl image export NAME REF`.
func NewExportCmd(r Remote) *cobra.Command {
	var cf credFlags
	cmd := &cobra.Command{
		Use:   "export NAME REF",
		Short: "Have metald push image NAME to an OCI registry as an artifact (oci://HOST[:PORT]/REPO:TAG)",
		Long: `Export asks metald to push its stored image NAME, as stored, to REF as an
OCI 1.1 artifact: artifactType application/vnd.metal-iaas.disk.v1, the empty
config, one layer that is the image file (media type after its format,
annotated with disktype, its title, raw SHA-256 and virtual size).
metalctl image import reads it back; so do oras pull and Ironic.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, pass, err := cf.userPass(r.In)
			if err != nil {
				return err
			}
			c, err := r.Client()
			if err != nil {
				return err
			}
			out, err := c.ExportImage(cmd.Context(), args[0], metalapi.ImageExport{Ref: args[1], Username: user,
				Password: pass, PlainHTTP: cf.plainHTTP})
			if err != nil {
				return err
			}
			format := "table"
			if r.Output != nil {
				format = *r.Output
			}
			return render(r.Out, format, out, func(w io.Writer) {
				fmt.Fprintf(w, "Pushed:\t%s\nAs:\t%s\nDigest:\t%s\n", args[0], out.Ref, out.Digest)
			})
		},
	}
	cf.register(cmd)
	return cmd
}
