package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/config"
	"github.com/sluice-mq/sluice/internal/meta"
)

// The access commands (user, vhost, permissions) edit the definitions in a
// data directory directly, through the metadata log, while the broker is
// stopped (the metadata store's lock refuses a second opener). The
// management HTTP API will offer the same on a running broker.

func init() {
	clientCommands = append(clientCommands, newUserCmd, newVhostCmd, newPermissionsCmd)
}

// withMeta opens the metadata store of the data directory.
func withMeta(dataDir string, fn func(m *meta.Store) error) error {
	m, err := meta.Open(filepath.Join(dataDir, "meta"), meta.Options{})
	if err != nil {
		return fmt.Errorf("open %s (is the broker running? stop it first): %w", dataDir, err)
	}
	defer m.Close()
	return fn(m)
}

func dataDirFlag(cmd *cobra.Command, dir *string) {
	def := config.Default().DataDir
	if v := os.Getenv("SLUICE_DATA_DIR"); v != "" {
		def = v
	}
	cmd.PersistentFlags().StringVar(dir, "data-dir", def, "the broker's data directory (env SLUICE_DATA_DIR); the broker must be stopped")
}

func newUserCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, list and delete AMQP users (broker stopped)",
		Example: `  sluice user add alice --password s3cret --tags administrator
  sluice user list
  sluice user delete alice`,
	}
	dataDirFlag(cmd, &dir)
	var password string
	var tags []string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user or replace its password and tags",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if password == "" {
				return fmt.Errorf("--password is required")
			}
			hash, err := auth.HashPassword(password)
			if err != nil {
				return err
			}
			return withMeta(dir, func(m *meta.Store) error {
				return m.PutUser(meta.User{Name: args[0], PasswordHash: hash, Tags: tags})
			})
		},
	}
	add.Flags().StringVar(&password, "password", "", "the user's password")
	add.Flags().StringSliceVar(&tags, "tags", nil, "user tags (administrator, monitoring, management)")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and its permissions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMeta(dir, func(m *meta.Store) error { return m.DeleteUser(args[0]) })
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMeta(dir, func(m *meta.Store) error {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "USER\tTAGS")
				for _, u := range m.Users() {
					fmt.Fprintf(w, "%s\t%s\n", u.Name, strings.Join(u.Tags, ","))
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func newVhostCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "vhost",
		Short: "Add, list and delete AMQP virtual hosts (broker stopped)",
		Example: `  sluice vhost add staging
  sluice vhost list
  sluice vhost delete staging`,
	}
	dataDirFlag(cmd, &dir)
	add := &cobra.Command{
		Use: "add NAME", Short: "Create a vhost", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMeta(dir, func(m *meta.Store) error { return m.PutVhost(meta.Vhost{Name: args[0]}) })
		},
	}
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a vhost with its exchanges, queues and permissions", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMeta(dir, func(m *meta.Store) error { return m.DeleteVhost(args[0]) })
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List vhosts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMeta(dir, func(m *meta.Store) error {
				for _, v := range m.Vhosts() {
					fmt.Fprintln(cmd.OutOrStdout(), v.Name)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func newPermissionsCmd() *cobra.Command {
	var dir, vhost string
	cmd := &cobra.Command{
		Use:   "permissions",
		Short: "Set, clear and list users' permissions on vhosts (broker stopped)",
		Long: `Permissions are RabbitMQ's: three regular expressions matched against the
names of the exchanges and queues a user configures (declare, delete), writes
(publish, bind to) and reads (consume, get, bind from). "" allows nothing,
".*" everything.`,
		Example: `  sluice permissions set alice --vhost / --configure '^alice-.*' --write '.*' --read '.*'
  sluice permissions list
  sluice permissions clear alice --vhost /`,
	}
	dataDirFlag(cmd, &dir)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "the virtual host")
	var p meta.Permission
	set := &cobra.Command{
		Use: "set USER", Short: "Set a user's permissions on a vhost", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p.User, p.Vhost = args[0], vhost
			return withMeta(dir, func(m *meta.Store) error { return m.SetPermission(p) })
		},
	}
	set.Flags().StringVar(&p.Configure, "configure", ".*", "configure pattern")
	set.Flags().StringVar(&p.Write, "write", ".*", "write pattern")
	set.Flags().StringVar(&p.Read, "read", ".*", "read pattern")
	clear := &cobra.Command{
		Use: "clear USER", Short: "Remove a user's permissions on a vhost", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMeta(dir, func(m *meta.Store) error { return m.ClearPermission(args[0], vhost) })
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "List all permissions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withMeta(dir, func(m *meta.Store) error {
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "USER\tVHOST\tCONFIGURE\tWRITE\tREAD")
				for _, p := range m.Permissions() {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.User, p.Vhost, p.Configure, p.Write, p.Read)
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(set, clear, list)
	return cmd
}
