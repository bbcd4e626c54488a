package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/metal-iaas/metal/internal/client"
	"github.com/metal-iaas/metal/pkg/metalapi"
)

// What to run next is the CLI's to say: metald's errors name no metalctl
// command; these hints do, from the error code and the machine's state.

// jobHint is the command that unblocks a job metald refused because of
// the machine's state, or "".
func jobHint(ctx context.Context, c *client.Client, kind, name string, err error) string {
	var ae *client.APIError
	if kind != "provision" || !errors.As(err, &ae) || ae.Code != metalapi.CodeTransition {
		return ""
	}
	m, gerr := c.GetMachine(ctx, name)
	if gerr != nil {
		return ""
	}
	switch m.State {
	case metalapi.StateNew, metalapi.StateDiscovered:
		return fmt.Sprintf("inspect it first: metalctl inspect %s; or mark it ready: metalctl machine edit %s --state ready", name, name)
	case metalapi.StateProvisioned:
		return fmt.Sprintf("deprovision it first: metalctl deprovision %s", name)
	}
	return ""
}

// powerHints tells how to give a BMC to the machines that failed for
// lack of one.
func powerHints(g *globals, res []metalapi.PowerResult) {
	for _, r := range res {
		if !r.OK && r.Error == metalapi.ErrorNoBMC {
			fmt.Fprintf(g.errOut, "hint: %s has no BMC: metalctl machine edit %s --bmc URL\n", r.Machine, r.Machine)
		}
	}
}
