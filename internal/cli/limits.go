package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
)

func init() {
	clientCommands = append(clientCommands, newLimitsCmd)
}

// limitKinds maps the command's kind word to its API path and the field
// naming the vhost or user in a listing.
var limitKinds = map[string]struct{ path, field string }{
	"vhost": {"vhost-limits", "vhost"},
	"user":  {"user-limits", "user"},
}

func limitKind(s string) (path, field string, err error) {
	k, ok := limitKinds[s]
	if !ok {
		return "", "", fmt.Errorf("kind %q: want vhost or user", s)
	}
	return k.path, k.field, nil
}

func newLimitsCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "List, set and clear vhost and user limits (management API)",
		Long: `Manage RabbitMQ's vhost limits (max-connections, max-queues) and user limits
(max-connections, max-channels) of a running broker through its management HTTP
API (--http, default ` + defaultHTTP + `), as rabbitmqctl set_vhost_limits and
set_user_limits do. A limit applies to connections, channels and queues opened
after it is set; -1 is no limit. Administrator only (docs/security.md).`,
		Example: `  sluice limits set vhost / max-queues 1000
  sluice limits set user alice max-channels 64
  sluice limits list
  sluice limits clear vhost / max-queues`,
	}
	f.register(cmd, false)
	cmd.AddCommand(newLimitsListCmd(&f), newLimitsSetCmd(&f), newLimitsClearCmd(&f))
	return cmd
}

func newLimitsListCmd(f *mgmtFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the vhost and user limits",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type row struct {
				Kind  string `json:"kind"`
				Name  string `json:"name"`
				Key   string `json:"key"`
				Value int64  `json:"value"`
			}
			var rows []row
			for _, kind := range []string{"vhost", "user"} {
				path, field, _ := limitKind(kind)
				var got []map[string]json.RawMessage
				if _, err := f.getInto("/api/"+path, &got); err != nil {
					return err
				}
				for _, g := range got {
					var name string
					var values map[string]int64
					json.Unmarshal(g[field], &name)
					json.Unmarshal(g["value"], &values)
					keys := make([]string, 0, len(values))
					for k := range values {
						keys = append(keys, k)
					}
					slices.Sort(keys)
					for _, k := range keys {
						rows = append(rows, row{kind, name, k, values[k]})
					}
				}
			}
			if asJSON, err := f.json(); err != nil || asJSON {
				if err != nil {
					return err
				}
				if rows == nil {
					rows = []row{}
				}
				return printJSON(cmd.OutOrStdout(), rows)
			}
			out := make([][]string, 0, len(rows))
			for _, r := range rows {
				out = append(out, []string{r.Kind, r.Name, r.Key, strconv.FormatInt(r.Value, 10)})
			}
			return table(cmd.OutOrStdout(), []string{"KIND", "NAME", "LIMIT", "VALUE"}, out)
		},
	}
}

func newLimitsSetCmd(f *mgmtFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "set vhost|user NAME LIMIT VALUE",
		Short: "Set a vhost's or user's limit",
		Args:  cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, a []string) error {
			path, _, err := limitKind(a[0])
			if err != nil {
				return err
			}
			v, err := strconv.ParseInt(a[3], 10, 64)
			if err != nil {
				return fmt.Errorf("value %q: want an integer (-1: no limit)", a[3])
			}
			if _, err := f.send(http.MethodPut, "/api/"+path+"/"+pathEsc(a[1])+"/"+pathEsc(a[2]), map[string]any{"value": v}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "set %s %s %s to %d\n", a[0], a[1], a[2], v)
			return nil
		},
	}
}

func newLimitsClearCmd(f *mgmtFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "clear vhost|user NAME LIMIT",
		Aliases: []string{"delete", "rm"},
		Short:   "Remove a vhost's or user's limit",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, a []string) error {
			path, _, err := limitKind(a[0])
			if err != nil {
				return err
			}
			if _, err := f.send(http.MethodDelete, "/api/"+path+"/"+pathEsc(a[1])+"/"+pathEsc(a[2]), nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cleared %s %s %s\n", a[0], a[1], a[2])
			return nil
		},
	}
}
