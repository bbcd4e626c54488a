package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/metal-iaas/metal/internal/imagecli"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Inspect and convert images locally; upload, import from and export to OCI registries, list, show and remove metald's images",
	}
	cmd.AddCommand(imagecli.NewInspectCmd(&g.output), imagecli.NewConvertCmd(),
		imageUploadCmd(g), imageListCmd(g), imageShowCmd(g), imageRmCmd(g))
	remote := imagecli.Remote{Client: g.client, Out: g.out, ErrOut: g.errOut, In: os.Stdin, Output: &g.output,
		PrintImage: func(img metalapi.Image) error { return printImages(g, []metalapi.Image{img}, false) }}
	cmd.AddCommand(imagecli.NewImportCmd(remote), imagecli.NewExportCmd(remote))
	return cmd
}

func imageUploadCmd(g *globals) *cobra.Command {
	var name string
	var replace bool
	cmd := &cobra.Command{
		Use:   "upload FILE|- --name NAME",
		Short: "Upload an image; metald inspects it and refuses it unless it decodes cleanly",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usageError{fmt.Errorf("--name is required")}
			}
			var in io.Reader = os.Stdin
			size := int64(-1)
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				st, err := f.Stat()
				if err != nil {
					return err
				}
				in, size = f, st.Size()
			}
			if f, ok := g.errOut.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				bar := progressbar.DefaultBytes(size, "uploading "+name)
				defer bar.Finish()
				r := progressbar.NewReader(in, bar)
				in = &r
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			img, err := c.UploadImage(cmd.Context(), name, in, size, replace)
			if err != nil {
				return err
			}
			return printImages(g, []metalapi.Image{img}, false)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the image in metald")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace an image of the same name")
	return cmd
}

func printImages(g *globals, imgs []metalapi.Image, list bool) error {
	var v any = imgs
	if !list && len(imgs) == 1 {
		v = imgs[0]
	}
	return render(g.out, g.output, v, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tFORMAT\tSIZE\tVIRTUAL SIZE\tRAW SHA-256\tAGE")
		for _, i := range imgs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, strings.Join(i.Chain, "/"), humanBytes(i.Size),
				humanBytes(i.VirtualSize), shortHash(i.RawSHA256), fmtAge(i.CreatedAt))
		}
	})
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return orDash(h)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func imageListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List metald's images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			imgs, err := c.ListImages(cmd.Context())
			if err != nil {
				return err
			}
			return printImages(g, imgs, true)
		},
	}
}

func imageShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show one of metald's images",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			img, err := c.GetImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(g.out, g.output, img, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "Name:\t%s\nFormat:\t%s\nFile:\t%s (%s)\nVirtual size:\t%s (%d bytes)\nFile SHA-256:\t%s\nRaw SHA-256:\t%s\nCreated:\t%s\n",
					img.Name, strings.Join(img.Chain, "/"), img.File, humanBytes(img.Size), humanBytes(img.VirtualSize),
					img.VirtualSize, img.SHA256, img.RawSHA256, img.CreatedAt.Local().Format("2006-01-02 15:04:05 MST"))
			})
		},
	}
}

func imageRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME…",
		Aliases: []string{"delete"},
		Short:   "Remove images from metald",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			for _, n := range args {
				if err := c.DeleteImage(cmd.Context(), n); err != nil {
					return fmt.Errorf("%s: %w", n, err)
				}
				if g.output == "table" {
					fmt.Fprintf(g.out, "removed %s\n", n)
				}
			}
			return nil
		},
	}
}
