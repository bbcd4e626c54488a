package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/metal-iaas/metal/pkg/metalapi"
)

func newJobShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one job: what it was asked (image, config drive, hostname, keys), where it is, how it ended",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageError{fmt.Errorf("job id %q: want a positive number (metalctl jobs lists them)", args[0])}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			j, err := c.GetJob(cmd.Context(), id)
			if err != nil {
				return err
			}
			return render(g.out, g.output, j, func(w *tabwriter.Writer) {
				var p metalapi.JobParams
				_ = json.Unmarshal(j.Params, &p)
				row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, orDash(v)) }
				row("id", strconv.FormatInt(j.ID, 10))
				row("machine", j.Machine)
				row("kind", j.Kind)
				row("state", j.State)
				row("phase", j.Phase)
				row("error", j.Error)
				row("created", j.CreatedAt.Format(time.RFC3339))
				if !j.FinishedAt.IsZero() {
					row("finished", j.FinishedAt.Format(time.RFC3339))
				}
				if p.Image != "" {
					row("image", p.Image)
					row("config drive", string(p.ConfigDrive))
					row("hostname", p.Hostname)
					row("ssh keys", strconv.Itoa(len(p.SSHKeys)))
					row("user-data", fmt.Sprintf("%d bytes", len(p.UserData)))
				}
				var pr metalapi.JobProgress
				if json.Unmarshal(j.Progress, &pr) == nil && pr.Total > 0 {
					row("progress", fmt.Sprintf("%s %d/%d bytes", pr.Phase, pr.BytesWritten, pr.Total))
				}
			})
		},
	}
}
