package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/config"
	"github.com/sluice-mq/sluice/internal/server"
)

// The access commands (user, vhost, permissions) work in two modes:
//   - online (the default): against a running broker, through the
//     management HTTP API (--http, --user, --password), as an
//     administrator;
//   - offline, when --data-dir is given on the command line: they edit the
//     definitions in that data directory directly, through the metadata
//     log (server.OfflineAccess), while the broker is stopped (the
//     metadata store's lock refuses a second opener). This is how the
//     first administrator is made before the broker ever runs.

func init() {
	clientCommands = append(clientCommands, newUserCmd, newVhostCmd, newPermissionsCmd)
}

const offlineHelp = `
Without --data-dir the command talks to a running broker through the
management HTTP API (--http, default ` + defaultHTTP + `) as an administrator.
With --data-dir it edits that data directory while the broker is stopped.`

// withAccess opens the definitions of the data directory for fn.
func withAccess(dataDir string, fn func(m *server.OfflineAccess) error) error {
	m, err := server.OpenOfflineAccess(dataDir)
	if err != nil {
		return fmt.Errorf("open %s (is the broker running? stop it first, or leave out --data-dir to use the management API): %w", dataDir, err)
	}
	defer m.Close()
	return fn(m)
}

func dataDirFlag(cmd *cobra.Command, dir *string) {
	def := config.Default().DataDir
	cmd.PersistentFlags().StringVar(dir, "data-dir", def,
		"edit this data directory of a STOPPED broker instead of using the management API")
}

// offline reports whether --data-dir was given.
func offline(cmd *cobra.Command) bool {
	fl := cmd.Flag("data-dir")
	return fl != nil && fl.Changed
}

// createdOrUpdated prints "created KIND NAME" for 201 and "updated KIND NAME" else.
func createdOrUpdated(cmd *cobra.Command, status int, kind, name string) {
	verb := "updated"
	if status == http.StatusCreated {
		verb = "created"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", verb, kind, name)
}

func newUserCmd() *cobra.Command {
	var dir string
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, list and delete users",
		Long:  `Manage the users of AMQP, the management API and the console.` + offlineHelp,
		Example: `  sluice user add alice --password s3cret --tags administrator
  sluice user list
  sluice user delete alice
  sluice user add alice --password s3cret --data-dir /var/lib/sluice   # broker stopped`,
	}
	dataDirFlag(cmd, &dir)
	f.register(cmd, false)
	var password string
	var tags []string
	add := &cobra.Command{
		Use:     "add NAME",
		Aliases: []string{"declare", "create"},
		Short:   "Create a user or replace its password and tags",
		Long: `Create a user or replace its password and tags. Here --password is the new
user's password; authenticate to the API with SLUICE_PASSWORD or
--http http://admin:pass@host:port.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if password == "" {
				return fmt.Errorf("--password is required")
			}
			if !offline(cmd) {
				st, err := f.send(http.MethodPut, "/api/users/"+pathEsc(args[0]),
					map[string]any{"password": password, "tags": strings.Join(tags, ",")})
				if err != nil {
					return err
				}
				createdOrUpdated(cmd, st, "user", args[0])
				return nil
			}
			u, err := broker.UserWithPassword(args[0], password, tags)
			if err != nil {
				return err
			}
			return withAccess(dir, func(m *server.OfflineAccess) error { return m.PutUser(u) })
		},
	}
	add.Flags().StringVar(&password, "password", "", "the new user's password")
	add.Flags().StringSliceVar(&tags, "tags", nil, "user tags (administrator, monitoring, management)")
	del := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a user and its permissions",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !offline(cmd) {
				if _, err := f.send(http.MethodDelete, "/api/users/"+pathEsc(args[0]), nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s\n", args[0])
				return nil
			}
			return withAccess(dir, func(m *server.OfflineAccess) error { return m.DeleteUser(args[0]) })
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			header := []string{"USER", "TAGS"}
			if !offline(cmd) {
				return list(cmd, &f, "/api/users", header, func(u map[string]any) []string {
					return []string{str(u["name"]), str(u["tags"])}
				})
			}
			return withAccess(dir, func(m *server.OfflineAccess) error {
				return offlineList(cmd, &f, m.Users(), header, func(u broker.User) []string {
					return []string{u.Name, strings.Join(u.Tags, ",")}
				})
			})
		},
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func newVhostCmd() *cobra.Command {
	var dir string
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "vhost",
		Short: "Add, list and delete AMQP virtual hosts",
		Long:  `Manage AMQP virtual hosts: separate namespaces of exchanges, queues and permissions.` + offlineHelp,
		Example: `  sluice vhost add staging
  sluice vhost list
  sluice vhost delete staging`,
	}
	dataDirFlag(cmd, &dir)
	f.register(cmd, false)
	var description string
	add := &cobra.Command{
		Use: "add NAME", Aliases: []string{"declare", "create"}, Short: "Create a vhost", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !offline(cmd) {
				st, err := f.send(http.MethodPut, "/api/vhosts/"+pathEsc(args[0]), map[string]any{"description": description})
				if err != nil {
					return err
				}
				createdOrUpdated(cmd, st, "vhost", args[0])
				return nil
			}
			return withAccess(dir, func(m *server.OfflineAccess) error {
				return m.PutVhost(broker.Vhost{Name: args[0], Description: description})
			})
		},
	}
	add.Flags().StringVar(&description, "description", "", "what the vhost is for")
	del := &cobra.Command{
		Use: "delete NAME", Aliases: []string{"rm"}, Short: "Delete a vhost with its exchanges, queues and permissions", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !offline(cmd) {
				if _, err := f.send(http.MethodDelete, "/api/vhosts/"+pathEsc(args[0]), nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted vhost %s\n", args[0])
				return nil
			}
			return withAccess(dir, func(m *server.OfflineAccess) error { return m.DeleteVhost(args[0]) })
		},
	}
	list := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List vhosts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !offline(cmd) {
				return list(cmd, &f, "/api/vhosts", []string{"NAME", "MESSAGES", "READY", "UNACKED", "DESCRIPTION"}, func(v map[string]any) []string {
					return []string{str(v["name"]), str(v["messages"]), str(v["messages_ready"]), str(v["messages_unacknowledged"]), str(v["description"])}
				})
			}
			return withAccess(dir, func(m *server.OfflineAccess) error {
				return offlineList(cmd, &f, m.Vhosts(), []string{"NAME", "DESCRIPTION"}, func(v broker.Vhost) []string {
					return []string{v.Name, v.Description}
				})
			})
		},
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func newPermissionsCmd() *cobra.Command {
	var dir, vhost string
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "permissions",
		Short: "Set, clear and list users' permissions on vhosts",
		Long: `Permissions are RabbitMQ's: three regular expressions matched against the
names of the exchanges and queues a user configures (declare, delete), writes
(publish, bind to) and reads (consume, get, bind from). "" allows nothing,
".*" everything. On a running broker a change applies to new AMQP connections.` + offlineHelp,
		Example: `  sluice permissions set alice --vhost / --configure '^alice-.*' --write '.*' --read '.*'
  sluice permissions list
  sluice permissions clear alice --vhost /`,
	}
	dataDirFlag(cmd, &dir)
	f.register(cmd, false)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "the virtual host")
	var p broker.Permission
	set := &cobra.Command{
		Use: "set USER", Short: "Set a user's permissions on a vhost", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.User, p.Vhost = args[0], vhost
			if !offline(cmd) {
				_, err := f.send(http.MethodPut, "/api/permissions/"+pathEsc(vhost)+"/"+pathEsc(args[0]),
					map[string]any{"configure": p.Configure, "write": p.Write, "read": p.Read})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "set permissions of %s on vhost %s\n", args[0], vhost)
				return nil
			}
			return withAccess(dir, func(m *server.OfflineAccess) error { return m.SetPermission(p) })
		},
	}
	set.Flags().StringVar(&p.Configure, "configure", ".*", "configure pattern")
	set.Flags().StringVar(&p.Write, "write", ".*", "write pattern")
	set.Flags().StringVar(&p.Read, "read", ".*", "read pattern")
	clear := &cobra.Command{
		Use: "clear USER", Short: "Remove a user's permissions on a vhost", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !offline(cmd) {
				if _, err := f.send(http.MethodDelete, "/api/permissions/"+pathEsc(vhost)+"/"+pathEsc(args[0]), nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cleared permissions of %s on vhost %s\n", args[0], vhost)
				return nil
			}
			return withAccess(dir, func(m *server.OfflineAccess) error { return m.ClearPermission(args[0], vhost) })
		},
	}
	list := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List all permissions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			header := []string{"USER", "VHOST", "CONFIGURE", "WRITE", "READ"}
			if !offline(cmd) {
				return list(cmd, &f, "/api/permissions", header, func(p map[string]any) []string {
					return []string{str(p["user"]), str(p["vhost"]), quoteEmpty(str(p["configure"])), quoteEmpty(str(p["write"])), quoteEmpty(str(p["read"]))}
				})
			}
			return withAccess(dir, func(m *server.OfflineAccess) error {
				return offlineList(cmd, &f, m.Permissions(), header, func(p broker.Permission) []string {
					return []string{p.User, p.Vhost, quoteEmpty(p.Configure), quoteEmpty(p.Write), quoteEmpty(p.Read)}
				})
			})
		},
	}
	cmd.AddCommand(set, clear, list)
	return cmd
}

// quoteEmpty shows the empty pattern (allow nothing) as "" in a table.
func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// offlineList prints items read from a data directory as a table, or as
// JSON in the metadata's own shapes.
func offlineList[T any](cmd *cobra.Command, f *mgmtFlags, items []T, header []string, row func(T) []string) error {
	asJSON, err := f.json()
	if err != nil {
		return err
	}
	if asJSON {
		if items == nil {
			items = []T{}
		}
		return printJSON(cmd.OutOrStdout(), items)
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return table(cmd.OutOrStdout(), header, rows)
}
