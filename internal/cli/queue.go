package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newQueueCmd) }

func newQueueCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "List, declare, delete, purge and peek at AMQP queues (management API)",
		Long: `Manage the AMQP queues of a running broker through its management HTTP API
(--http, default ` + defaultHTTP + `). Declares and deletes go through the
broker's router exactly as AMQP's do: a queue declared here is usable over AMQP
at once. The user needs the vhost permissions AMQP would need.`,
		Example: `  sluice queue list
  sluice queue declare jobs --argument x-max-length=10000
  sluice queue get jobs --count 5
  sluice queue purge jobs
  sluice queue delete jobs --if-empty
  sluice queue list --vhost staging --output json
  sluice queue grow 4                  # a member on node 4 for every quorum queue
  sluice queue shrink 2                # node 2's members removed
  sluice queue add-member orders 3`,
	}
	f.register(cmd, true)
	cmd.AddCommand(newQueueListCmd(&f), newQueueDeclareCmd(&f), newQueueDeleteCmd(&f),
		newQueuePurgeCmd(&f), newQueueGetCmd(&f), newQueueAddMemberCmd(&f), newQueueDeleteMemberCmd(&f),
		newQueueGrowCmd(&f), newQueueShrinkCmd(&f))
	return cmd
}

func newQueueListCmd(f *mgmtFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List queues with their message counts and consumers",
		Long: `List the queues of --vhost (or of every vhost with --all-vhosts): READY
messages wait for a consumer, UNACKED ones are delivered and not yet
acknowledged. --output json prints the API's queue objects.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			header := []string{"NAME", "TYPE", "DURABLE", "READY", "UNACKED", "CONSUMERS"}
			if all {
				header = append([]string{"VHOST"}, header...)
			}
			return list(cmd, f, f.vhostPath("queues", all), header, func(q map[string]any) []string {
				row := []string{str(q["name"]), str(q["type"]), str(q["durable"]),
					str(q["messages_ready"]), str(q["messages_unacknowledged"]), str(q["consumers"])}
				if all {
					row = append([]string{str(q["vhost"])}, row...)
				}
				return row
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-vhosts", "A", false, "list the queues of every vhost")
	return cmd
}

func newQueueDeclareCmd(f *mgmtFlags) *cobra.Command {
	var (
		durable, autoDelete bool
		args                []string
	)
	cmd := &cobra.Command{
		Use:     "declare NAME",
		Aliases: []string{"create", "add"},
		Short:   "Declare a queue",
		Long: `Declare a queue. Declaring an existing queue with the same settings succeeds
and changes nothing; different settings are refused (inequivalent arg), as in
AMQP. --argument sets queue arguments (x-max-length, x-message-ttl,
x-dead-letter-exchange, x-queue-type=stream...); numbers and true/false are
sent as such.`,
		Example: `  sluice queue declare jobs
  sluice queue declare events --argument x-queue-type=stream
  sluice queue declare capped --argument x-max-length=100 --argument x-overflow=reject-publish`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			table, err := argsFlag(args)
			if err != nil {
				return err
			}
			body := map[string]any{"durable": durable, "auto_delete": autoDelete, "arguments": table}
			st, err := f.send(http.MethodPut, "/api/queues/"+pathEsc(f.vhost)+"/"+pathEsc(a[0]), body)
			if err != nil {
				return err
			}
			if st == http.StatusCreated {
				fmt.Fprintf(cmd.OutOrStdout(), "declared queue %s\n", a[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "queue %s already exists\n", a[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&durable, "durable", true, "survive a broker restart")
	cmd.Flags().BoolVar(&autoDelete, "auto-delete", false, "delete when the last consumer goes")
	cmd.Flags().StringArrayVar(&args, "argument", nil, "queue argument as key=value (repeatable)")
	return cmd
}

func newQueueDeleteCmd(f *mgmtFlags) *cobra.Command {
	var ifEmpty, ifUnused bool
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete queues and their messages",
		Example: `  sluice queue delete jobs
  sluice queue delete jobs --if-empty --if-unused`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			q := ""
			if ifEmpty {
				q += "&if-empty=true"
			}
			if ifUnused {
				q += "&if-unused=true"
			}
			if q != "" {
				q = "?" + q[1:]
			}
			for _, name := range a {
				if _, err := f.send(http.MethodDelete, "/api/queues/"+pathEsc(f.vhost)+"/"+pathEsc(name)+q, nil); err != nil {
					return fmt.Errorf("delete queue %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted queue %s\n", name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&ifEmpty, "if-empty", false, "only if the queue has no messages")
	cmd.Flags().BoolVar(&ifUnused, "if-unused", false, "only if the queue has no consumers")
	return cmd
}

func newQueuePurgeCmd(f *mgmtFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "purge NAME...",
		Short: "Remove the ready messages of queues",
		Long: `Remove the messages waiting in queues. Messages delivered and not yet
acknowledged stay (as in RabbitMQ): they come back if their consumer rejects
them or goes away.`,
		Example: `  sluice queue purge jobs`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			for _, name := range a {
				if _, err := f.send(http.MethodDelete, "/api/queues/"+pathEsc(f.vhost)+"/"+pathEsc(name)+"/contents", nil); err != nil {
					return fmt.Errorf("purge queue %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "purged queue %s\n", name)
			}
			return nil
		},
	}
}

func newQueueGetCmd(f *mgmtFlags) *cobra.Command {
	var (
		count int
		ack   bool
	)
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show messages at the head of a queue",
		Long: `Take up to --count messages from the head of a queue and show them. By
default they are put back (requeued, marked redelivered); with --ack they are
removed for good.`,
		Example: `  sluice queue get jobs
  sluice queue get jobs --count 10 --output json
  sluice queue get jobs --ack`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			asJSON, err := f.json()
			if err != nil {
				return err
			}
			mode := "ack_requeue_true"
			if ack {
				mode = "ack_requeue_false"
			}
			body := map[string]any{"count": count, "ackmode": mode, "encoding": "auto"}
			raw, err := f.post("/api/queues/"+pathEsc(f.vhost)+"/"+pathEsc(a[0])+"/get", body)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var msgs []map[string]any
			if err := json.Unmarshal(raw, &msgs); err != nil {
				return err
			}
			if len(msgs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "queue %s has no ready messages\n", a[0])
				return nil
			}
			rows := make([][]string, 0, len(msgs))
			for _, m := range msgs {
				rows = append(rows, []string{str(m["exchange"]), str(m["routing_key"]), str(m["redelivered"]),
					str(m["payload_bytes"]), str(m["payload_encoding"]), str(m["payload"])})
			}
			if err := table(cmd.OutOrStdout(), []string{"EXCHANGE", "ROUTING-KEY", "REDELIVERED", "BYTES", "ENCODING", "PAYLOAD"}, rows); err != nil {
				return err
			}
			left := str(msgs[len(msgs)-1]["message_count"])
			if _, err := strconv.Atoi(left); err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s message(s) left in the queue\n", left)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&count, "count", 1, "how many messages to take")
	cmd.Flags().BoolVar(&ack, "ack", false, "remove the messages instead of requeueing them")
	return cmd
}
