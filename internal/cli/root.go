// Package cli implements the sluice command line: one file per subcommand.
package cli

import (
	"fmt"
	"os"

	"github.com/sluice-mq/sluice/internal/version"
	"github.com/spf13/cobra"
)

// Main runs the sluice command with args and returns the exit code.
func Main(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Sluice: one message broker for Kafka and AMQP clients",
		Long: `Sluice is a message broker that speaks the Kafka protocol and AMQP 0-9-1
on one log storage engine. "sluice server" runs the broker; the other commands are
clients for people at a terminal.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.Flags().BoolP("version", "v", false, "print the version of this binary and exit")
	root.AddCommand(newServerCmd())
	for _, add := range clientCommands {
		root.AddCommand(add())
	}
	return root
}

// clientCommands are registered by the client command files.
var clientCommands []func() *cobra.Command
