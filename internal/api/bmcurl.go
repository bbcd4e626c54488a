package api

import (
	"fmt"

	"github.com/metal-iaas/metal/pkg/bmc"
	"github.com/metal-iaas/metal/pkg/inventory"
)

// checkBMC refuses a BMC URL that pkg/bmc cannot use, before the store
// keeps it: pkg/bmc parses it in full (schemes, port, cipher, options),
// where the inventory checks only its scheme and shape. Empty removes
// the BMC.
func checkBMC(raw string) error {
	if raw == "" {
		return nil
	}
	if _, err := bmc.ParseURL(raw); err != nil {
		return fmt.Errorf("%w: bmc: %v", inventory.ErrInvalid, err)
	}
	return nil
}
