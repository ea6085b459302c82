//go:build nodevchain

// A build with -tags nodevchain (the node image, deploy/Dockerfile) has no
// dev chain: testnet, devchain and demo say so instead of running.

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// devCommands are testnet, devchain and demo, each an error naming the
// build that has them.
func devCommands(a *app) []*cobra.Command {
	var cmds []*cobra.Command
	for _, c := range []struct{ use, short string }{
		{"testnet", "Run a local in-process testnet (not in this build)"},
		{"devchain", "Serve an embedded dev chain (not in this build)"},
		{"demo", "Run the local demo (not in this build)"},
	} {
		cmds = append(cmds, &cobra.Command{
			Use:                c.use,
			Short:              c.short,
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return fmt.Errorf("ipsx %s: this ipsx was built without the dev chain (-tags nodevchain, the node image); "+
					"use a full build (make build) or the dev chain image (make image builds ipsx-devchain:dev)", c.use)
			},
		})
	}
	return cmds
}
