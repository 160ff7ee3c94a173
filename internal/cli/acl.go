package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

// sluice acl: the Kafka ACLs (docs/security.md, "Authorization") through
// the management API of a running broker (/api/acls): the same rules
// Kafka's kafka-acls.sh manages over the Kafka protocol.

func init() {
	clientCommands = append(clientCommands, newACLCmd)
}

func newACLCmd() *cobra.Command {
	var f mgmtFlags
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Add, delete and list Kafka ACLs",
		Long: `Kafka ACLs: a principal (User:name, or User:* for every authenticated user)
may (allow) or may not (deny) perform an operation on a topic, group,
transactional id or the cluster, named literally (* for every name) or by a
prefix, from a host (* or an IP address). A deny wins over any allow and over
the user's permissions in the Kafka vhost. Needs a running broker (--http,
default ` + defaultHTTP + `) and an administrator; Kafka admin tools manage the
same ACLs over the Kafka protocol.`,
		Example: `  sluice acl add --principal User:alice --operation write --topic orders. --prefixed
  sluice acl add --principal User:alice --operation read --group orders. --prefixed
  sluice acl add --principal User:mallory --deny --operation read --topic payments
  sluice acl list
  sluice acl delete --principal User:mallory --deny --operation read --topic payments`,
	}
	f.register(cmd, false)
	var principal, operation, host, topic, group, txnID string
	var cluster, prefixed, deny bool
	flags := func(c *cobra.Command) {
		c.Flags().StringVar(&principal, "principal", "", "User:name or User:* (required)")
		c.Flags().StringVar(&operation, "operation", "", "all, read, write, create, delete, alter, describe, cluster_action, describe_configs, alter_configs, idempotent_write (required)")
		c.Flags().StringVar(&host, "host", "*", "the client address the ACL applies to")
		c.Flags().StringVar(&topic, "topic", "", "a topic (name or prefix)")
		c.Flags().StringVar(&group, "group", "", "a consumer group (name or prefix)")
		c.Flags().StringVar(&txnID, "transactional-id", "", "a transactional id (name or prefix)")
		c.Flags().BoolVar(&cluster, "cluster", false, "the cluster")
		c.Flags().BoolVar(&prefixed, "prefixed", false, "the name is a prefix")
		c.Flags().BoolVar(&deny, "deny", false, "deny instead of allow")
	}
	body := func() (map[string]string, error) {
		acl := map[string]string{"principal": principal, "operation": operation, "host": host,
			"pattern_type": "literal", "permission": "allow"}
		if prefixed {
			acl["pattern_type"] = "prefixed"
		}
		if deny {
			acl["permission"] = "deny"
		}
		n := 0
		for _, r := range []struct{ kind, name string }{{"topic", topic}, {"group", group}, {"transactional_id", txnID}} {
			if r.name != "" {
				acl["resource_type"], acl["resource_name"] = r.kind, r.name
				n++
			}
		}
		if cluster {
			acl["resource_type"], acl["resource_name"] = "cluster", "kafka-cluster"
			n++
		}
		if n != 1 {
			return nil, fmt.Errorf("give exactly one of --topic, --group, --transactional-id, --cluster")
		}
		if principal == "" || operation == "" {
			return nil, fmt.Errorf("--principal and --operation are required")
		}
		return acl, nil
	}
	add := &cobra.Command{
		Use: "add", Short: "Add a Kafka ACL", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			acl, err := body()
			if err != nil {
				return err
			}
			if _, err := f.send(http.MethodPost, "/api/acls", acl); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added: %s %s %s on %s %s\n", acl["principal"], acl["permission"], acl["operation"], acl["resource_type"], acl["resource_name"])
			return nil
		},
	}
	flags(add)
	del := &cobra.Command{
		Use: "delete", Aliases: []string{"rm"}, Short: "Delete a Kafka ACL (given exactly as added)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			acl, err := body()
			if err != nil {
				return err
			}
			if _, err := f.send(http.MethodDelete, "/api/acls", acl); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted: %s %s %s on %s %s\n", acl["principal"], acl["permission"], acl["operation"], acl["resource_type"], acl["resource_name"])
			return nil
		},
	}
	flags(del)
	list := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List the Kafka ACLs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			header := []string{"PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE", "NAME", "PATTERN", "HOST"}
			return list(cmd, &f, "/api/acls", header, func(a map[string]any) []string {
				return []string{str(a["principal"]), str(a["permission"]), str(a["operation"]), str(a["resource_type"]),
					str(a["resource_name"]), str(a["pattern_type"]), str(a["host"])}
			})
		},
	}
	cmd.AddCommand(add, del, list)
	return cmd
}
