package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newExchangeCmd) }

func newExchangeCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "List, declare and delete AMQP exchanges (management API)",
		Long: `Manage the AMQP exchanges of a running broker through its management HTTP
API (--http, default ` + defaultHTTP + `).`,
		Example: `  sluice exchange list
  sluice exchange declare orders --type topic
  sluice exchange delete orders --if-unused`,
	}
	f.register(cmd, true)
	cmd.AddCommand(newExchangeListCmd(&f), newExchangeDeclareCmd(&f), newExchangeDeleteCmd(&f))
	return cmd
}

func newExchangeListCmd(f *mgmtFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List exchanges",
		Long: `List the exchanges of --vhost (or of every vhost with --all-vhosts), the
predeclared amq.* ones included; the default exchange shows as "(default)".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			header := []string{"NAME", "TYPE", "DURABLE", "AUTO-DELETE", "INTERNAL", "ARGUMENTS"}
			if all {
				header = append([]string{"VHOST"}, header...)
			}
			return list(cmd, f, f.vhostPath("exchanges", all), header, func(e map[string]any) []string {
				name := str(e["name"])
				if name == "" {
					name = "(default)"
				}
				row := []string{name, str(e["type"]), str(e["durable"]), str(e["auto_delete"]), str(e["internal"]), str(e["arguments"])}
				if all {
					row = append([]string{str(e["vhost"])}, row...)
				}
				return row
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-vhosts", "A", false, "list the exchanges of every vhost")
	return cmd
}

func newExchangeDeclareCmd(f *mgmtFlags) *cobra.Command {
	var (
		typ                           string
		durable, autoDelete, internal bool
		args                          []string
	)
	cmd := &cobra.Command{
		Use:     "declare NAME",
		Aliases: []string{"create", "add"},
		Short:   "Declare an exchange",
		Long: `Declare an exchange of --type direct, fanout, topic, headers or
x-delayed-message (with --argument x-delayed-type=direct). Redeclaring with the
same settings succeeds; different settings are refused.`,
		Example: `  sluice exchange declare orders --type topic
  sluice exchange declare later --type x-delayed-message --argument x-delayed-type=direct`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			table, err := argsFlag(args)
			if err != nil {
				return err
			}
			body := map[string]any{"type": typ, "durable": durable, "auto_delete": autoDelete, "internal": internal, "arguments": table}
			st, err := f.send(http.MethodPut, "/api/exchanges/"+pathEsc(f.vhost)+"/"+pathEsc(a[0]), body)
			if err != nil {
				return err
			}
			if st == http.StatusCreated {
				fmt.Fprintf(cmd.OutOrStdout(), "declared exchange %s\n", a[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "exchange %s already exists\n", a[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&typ, "type", "t", "direct", "exchange type: direct, fanout, topic, headers, x-delayed-message")
	cmd.Flags().BoolVar(&durable, "durable", true, "survive a broker restart")
	cmd.Flags().BoolVar(&autoDelete, "auto-delete", false, "delete when the last binding from it goes")
	cmd.Flags().BoolVar(&internal, "internal", false, "refuse publishes from clients (only exchange-to-exchange bindings feed it)")
	cmd.Flags().StringArrayVar(&args, "argument", nil, "exchange argument as key=value (repeatable)")
	return cmd
}

func newExchangeDeleteCmd(f *mgmtFlags) *cobra.Command {
	var ifUnused bool
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete exchanges and their bindings",
		Example: `  sluice exchange delete orders`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			q := ""
			if ifUnused {
				q = "?if-unused=true"
			}
			for _, name := range a {
				if _, err := f.send(http.MethodDelete, "/api/exchanges/"+pathEsc(f.vhost)+"/"+pathEsc(name)+q, nil); err != nil {
					return fmt.Errorf("delete exchange %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted exchange %s\n", name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ifUnused, "if-unused", false, "only if no binding has it as source")
	return cmd
}
