package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newBindingCmd) }

func newBindingCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "binding",
		Short: "List, declare and delete AMQP bindings (management API)",
		Long: `Manage the bindings of a running broker through its management HTTP API
(--http, default ` + defaultHTTP + `). A binding routes messages from a source
exchange to a destination queue (or exchange, with --destination-type
exchange) when the routing key matches.`,
		Example: `  sluice binding declare orders billing --routing-key 'order.*'
  sluice binding list
  sluice binding delete orders billing --routing-key 'order.*'`,
	}
	f.register(cmd, true)
	cmd.AddCommand(newBindingListCmd(&f), newBindingDeclareCmd(&f), newBindingDeleteCmd(&f))
	return cmd
}

func newBindingListCmd(f *mgmtFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List bindings",
		Long: `List the bindings of --vhost (or of every vhost with --all-vhosts),
including every queue's implicit binding from the default exchange, which
shows as "(default)".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			header := []string{"SOURCE", "DESTINATION", "DESTINATION-TYPE", "ROUTING-KEY", "ARGUMENTS"}
			if all {
				header = append([]string{"VHOST"}, header...)
			}
			return list(cmd, f, f.vhostPath("bindings", all), header, func(b map[string]any) []string {
				src := str(b["source"])
				if src == "" {
					src = "(default)"
				}
				if str(b["source_type"]) == "topic" {
					src = "topic:" + src
				}
				row := []string{src, str(b["destination"]), str(b["destination_type"]), str(b["routing_key"]), str(b["arguments"])}
				if all {
					row = append([]string{str(b["vhost"])}, row...)
				}
				return row
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-vhosts", "A", false, "list the bindings of every vhost")
	return cmd
}

// bindingFlags are the flags that name a binding besides its ends.
type bindingFlags struct {
	srcType    string
	destType   string
	routingKey string
	args       []string
}

func (b *bindingFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&b.srcType, "source-type", "exchange", "exchange, or topic: a Kafka topic feeding the queue every record (docs/amqp-compatibility.md, \"Queues bound to topics\")")
	cmd.Flags().StringVar(&b.destType, "destination-type", "queue", "queue or exchange")
	cmd.Flags().StringVarP(&b.routingKey, "routing-key", "k", "", "the binding's routing key (pattern for topic exchanges)")
	cmd.Flags().StringArrayVar(&b.args, "argument", nil, "binding argument as key=value (repeatable; headers exchanges match on them)")
}

// path is /api/bindings/{vhost}/e/{src}/q|e/{dst}, or
// /api/bindings/{vhost}/t/{topic}/q/{dst} for a topic source.
func (b *bindingFlags) path(f *mgmtFlags, src, dst string) (string, error) {
	switch b.srcType {
	case "exchange", "e", "":
	case "topic", "t":
		if b.destType != "queue" && b.destType != "q" {
			return "", fmt.Errorf("--source-type topic: the destination must be a queue")
		}
		return "/api/bindings/" + pathEsc(f.vhost) + "/t/" + pathEsc(src) + "/q/" + pathEsc(dst), nil
	default:
		return "", fmt.Errorf("--source-type: %q is not exchange or topic", b.srcType)
	}
	kind := ""
	switch b.destType {
	case "queue", "q":
		kind = "q"
	case "exchange", "e":
		kind = "e"
	default:
		return "", fmt.Errorf("--destination-type: %q is not queue or exchange", b.destType)
	}
	if src == "" {
		src = "amq.default"
	}
	return "/api/bindings/" + pathEsc(f.vhost) + "/e/" + pathEsc(src) + "/" + kind + "/" + pathEsc(dst), nil
}

func newBindingDeclareCmd(f *mgmtFlags) *cobra.Command {
	var b bindingFlags
	cmd := &cobra.Command{
		Use:     "declare SOURCE DESTINATION",
		Aliases: []string{"create", "add"},
		Short:   "Bind a queue (or exchange) to an exchange",
		Example: `  sluice binding declare orders billing --routing-key 'order.created'
  sluice binding declare events audit --destination-type exchange
  sluice binding declare payments payment-retries --source-type topic --routing-key '#'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			path, err := b.path(f, a[0], a[1])
			if err != nil {
				return err
			}
			table, err := argsFlag(b.args)
			if err != nil {
				return err
			}
			if _, err := f.send(http.MethodPost, path, map[string]any{"routing_key": b.routingKey, "arguments": table}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bound %s %s to %s %s with routing key %q\n", b.destType, a[1], cmp.Or(b.srcType, "exchange"), a[0], b.routingKey)
			return nil
		},
	}
	b.register(cmd)
	return cmd
}

func newBindingDeleteCmd(f *mgmtFlags) *cobra.Command {
	var b bindingFlags
	cmd := &cobra.Command{
		Use:     "delete SOURCE DESTINATION",
		Aliases: []string{"rm"},
		Short:   "Remove a binding",
		Long: `Remove the binding from SOURCE to DESTINATION with --routing-key (and
--argument, for bindings that have arguments).`,
		Example: `  sluice binding delete orders billing --routing-key 'order.created'`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			path, err := b.path(f, a[0], a[1])
			if err != nil {
				return err
			}
			want, err := argsFlag(b.args)
			if err != nil {
				return err
			}
			wantJSON, _ := json.Marshal(want)
			// The binding's properties key is the API's to compute: take
			// it from the listing of the bindings between the two ends.
			var found []map[string]any
			if _, err := f.getInto(path, &found); err != nil {
				return err
			}
			for _, bd := range found {
				args, _ := bd["arguments"].(map[string]any)
				if args == nil {
					args = map[string]any{}
				}
				gotJSON, _ := json.Marshal(args)
				if str(bd["routing_key"]) != b.routingKey || string(gotJSON) != string(wantJSON) {
					continue
				}
				if _, err := f.send(http.MethodDelete, path+"/"+pathEsc(str(bd["properties_key"])), nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "unbound %s %s from %s %s with routing key %q\n", b.destType, a[1], cmp.Or(b.srcType, "exchange"), a[0], b.routingKey)
				return nil
			}
			return fmt.Errorf("no binding from %s to %s %s with routing key %q and those arguments", a[0], b.destType, a[1], b.routingKey)
		},
	}
	b.register(cmd)
	return cmd
}
