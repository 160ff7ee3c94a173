package cli

import "github.com/spf13/cobra"

func init() { clientCommands = append(clientCommands, newBenchCmd) }

// benchCommands are the load generators, one per protocol, registered by
// their own files.
var benchCommands []func() *cobra.Command

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate load against a broker and measure throughput and latency",
		Long: `Load generators that measure throughput and latency against a running broker.
They only ever connect to the addresses given to them, and always stop by
themselves after a bounded duration or number of records.`,
		Example: `  sluice bench kafka --duration 10s
  sluice bench kafka --rate 20000 --producers 2 --consumers 2
  sluice bench amqp --duration 10s
  sluice bench amqp --rate 5000 --publishers 4 --consumers 4
  sluice bench churn --churners 4 --rate 1000 --duration 20s`,
	}
	for _, add := range benchCommands {
		cmd.AddCommand(add())
	}
	return cmd
}
