package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/metal-iaas/metal/pkg/metalapi"
)

func newEventsCmd(g *globals) *cobra.Command {
	var q metalapi.EventQuery
	var follow bool
	var limit int
	cmd := &cobra.Command{
		Use:   "events [--follow] [--machine NAME] [--since ID] [--limit N]",
		Short: "Show what happened, in order; --follow streams new events",
		Long: `Show events oldest first: the latest --limit of them, or with --since
the first --limit after that event id (--limit 0: all of them, read from
metald page by page). --follow streams events after --since as they
happen.`,
		Example: `  metalctl events --machine rack1-07
  metalctl events --limit 20
  metalctl events --since 5000 --limit 0 -o json
  metalctl events --follow --type dhcp -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if limit < 0 {
				return fmt.Errorf("--limit %d: want a number of events, or 0 for all", limit)
			}
			if !follow {
				q.Newest = q.Since == 0 // without --since, the latest events
				evs, err := c.ListEvents(ctx, q, limit)
				if err != nil {
					return err
				}
				return render(g.out, g.output, evs, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "ID\tTIME\tMACHINE\tTYPE\tMESSAGE")
					for _, e := range evs {
						eventRow(w, e)
					}
				})
			}
			// Streaming: one JSON object per line for -o json, a YAML
			// document per event for -o yaml, aligned-ish lines otherwise.
			enc := json.NewEncoder(g.out)
			return c.FollowEvents(ctx, q, func(e metalapi.Event) error {
				switch g.output {
				case "json":
					return enc.Encode(e)
				case "yaml":
					b, err := yaml.Marshal(e)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(g.out, "---\n%s", b)
					return err
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				eventRow(tw, e)
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep streaming new events until interrupted")
	f.StringVar(&q.Machine, "machine", "", "only events of this machine")
	f.StringVar(&q.Type, "type", "", "only events of this type or type prefix (e.g. dhcp)")
	f.Int64Var(&q.Since, "since", 0, "only events after this id")
	f.IntVar(&limit, "limit", 1000, "at most this many events, the latest unless --since is given (0: all)")
	return cmd
}

func eventRow(w *tabwriter.Writer, e metalapi.Event) {
	msg := e.Message
	if len(e.Data) > 0 && msg == "" {
		keys := make([]string, 0, len(e.Data))
		for k := range e.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, e.Data[k])
		}
		msg = strings.Join(parts, " ")
	}
	who := e.Machine
	if who == "" {
		who = e.MAC
	}
	fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Local().Format(time.DateTime), orDash(who), e.Type, msg)
}

func newLeaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Aliases: []string{"leases"}, Short: "DHCP leases handed out in full mode"}
	cmd.AddCommand(&cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List leases",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ls, err := c.ListLeases(cmd.Context())
			if err != nil {
				return err
			}
			return render(g.out, g.output, ls, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "IP\tMAC\tHOSTNAME\tSTATE\tEXPIRES")
				for _, l := range ls {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", l.IP, l.MAC, orDash(l.Hostname), l.State, l.ExpiresAt.Local().Format(time.DateTime))
				}
			})
		},
	})
	return cmd
}
