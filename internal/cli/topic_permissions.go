package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

// sluice topic-permissions: RabbitMQ's topic permissions (docs/security.md)
// through the management API of a running broker, as rabbitmqctl
// set_topic_permissions does. Unlike the other access commands there is
// no offline (--data-dir) mode.

func init() {
	clientCommands = append(clientCommands, newTopicPermissionsCmd)
}

func newTopicPermissionsCmd() *cobra.Command {
	var vhost, exchange, write, read string
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "topic-permissions",
		Short: "Set, clear and list users' topic permissions (routing keys on topic exchanges)",
		Long: `Topic permissions are RabbitMQ's: per user, vhost and topic exchange, a write
pattern matched against the routing keys the user publishes with and a read
pattern matched against the keys it binds queues with. {username} and {vhost}
in a pattern stand for the connection's user and vhost. An exchange the user
has no topic permission on is governed by its vhost permissions alone. A
change applies to new AMQP connections. Needs a running broker
(--http, default ` + defaultHTTP + `) and an administrator.`,
		Example: `  sluice topic-permissions set alice --vhost / --exchange amq.topic --write '^{username}\.' --read '.*'
  sluice topic-permissions list
  sluice topic-permissions clear alice --vhost / --exchange amq.topic`,
	}
	f.register(cmd, false)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "the virtual host")
	set := &cobra.Command{
		Use: "set USER", Short: "Set a user's topic permission on an exchange", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if exchange == "" {
				return fmt.Errorf("--exchange is required")
			}
			if _, err := f.send(http.MethodPut, "/api/topic-permissions/"+pathEsc(vhost)+"/"+pathEsc(args[0]),
				map[string]any{"exchange": exchange, "write": write, "read": read}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set topic permission of %s on exchange %s in vhost %s\n", args[0], exchange, vhost)
			return nil
		},
	}
	set.Flags().StringVar(&exchange, "exchange", "", "the topic exchange (required)")
	set.Flags().StringVar(&write, "write", ".*", "pattern for routing keys published with")
	set.Flags().StringVar(&read, "read", ".*", "pattern for routing keys bound with")
	var clearExchange string
	clear := &cobra.Command{
		Use: "clear USER", Short: "Remove a user's topic permission on an exchange (all in the vhost without --exchange)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/api/topic-permissions/" + pathEsc(vhost) + "/" + pathEsc(args[0])
			if clearExchange != "" {
				path += "/" + pathEsc(clearExchange)
			}
			if _, err := f.send(http.MethodDelete, path, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cleared topic permissions of %s in vhost %s\n", args[0], vhost)
			return nil
		},
	}
	clear.Flags().StringVar(&clearExchange, "exchange", "", "the exchange (default: every one)")
	list := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List all topic permissions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			header := []string{"USER", "VHOST", "EXCHANGE", "WRITE", "READ"}
			return list(cmd, &f, "/api/topic-permissions", header, func(p map[string]any) []string {
				return []string{str(p["user"]), str(p["vhost"]), str(p["exchange"]), quoteEmpty(str(p["write"])), quoteEmpty(str(p["read"]))}
			})
		},
	}
	cmd.AddCommand(set, clear, list)
	return cmd
}
