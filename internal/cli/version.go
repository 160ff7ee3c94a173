package cli

import (
	"fmt"

	"github.com/sluice-mq/sluice/internal/version"
	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newVersionCmd) }

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print this binary's version",
		Long: `Print the version of this sluice binary, as sluice --version does:
the version, the commit it was built from ("modified" when the tree had
uncommitted changes), and the Go toolchain and platform. A release build sets
the version at link time; other builds report what Go stamped into the binary,
or ` + version.Dev + `. A running broker reports its own version as product_version
in sluice status and the management API.

--output json prints one object: version, commit, modified, go, platform.`,
		Example: `  sluice version
  sluice version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			switch output {
			case "json":
				return printJSON(cmd.OutOrStdout(), info)
			case "", "text", "table":
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "sluice %s\n", info)
				return err
			}
			return fmt.Errorf("--output: %q is not text or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
