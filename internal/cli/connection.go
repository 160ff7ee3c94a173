package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newConnectionCmd) }

func newConnectionCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "connection",
		Short: "List and close AMQP client connections (management API)",
		Long: `List and close the AMQP connections of a running broker through its
management HTTP API (--http, default ` + defaultHTTP + `). Kafka connections
are not listed (the API does not track them).`,
		Example: `  sluice connection list
  sluice connection close '127.0.0.1:53422 -> 127.0.0.1:5672' --reason 'maintenance'`,
	}
	f.register(cmd, false)
	ls := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List AMQP connections",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			header := []string{"NAME", "USER", "VHOST", "CHANNELS", "CLIENT", "AGE"}
			return list(cmd, &f, "/api/connections", header, func(c map[string]any) []string {
				client := ""
				if p, ok := c["client_properties"].(map[string]any); ok {
					client = str(p["product"])
				}
				ms, _ := c["connected_at"].(float64)
				return []string{str(c["name"]), str(c["user"]), str(c["vhost"]), str(c["channels"]), client, since(int64(ms))}
			})
		},
	}
	var reason string
	closeCmd := &cobra.Command{
		Use:   "close NAME...",
		Short: "Close AMQP connections (320 CONNECTION_FORCED)",
		Long: `Close connections by name (as "connection list" shows them). The client gets
connection.close with 320 CONNECTION_FORCED and --reason as the reply text.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			for _, name := range a {
				if _, err := f.sendWithHeader(http.MethodDelete, "/api/connections/"+pathEsc(name), "X-Reason", reason); err != nil {
					return fmt.Errorf("close connection %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "closed connection %s\n", name)
			}
			return nil
		},
	}
	closeCmd.Flags().StringVar(&reason, "reason", "Closed via sluice CLI", "reply text sent to the client")
	cmd.AddCommand(ls, closeCmd)
	return cmd
}
