package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"
)

// add-node and remove-node change the members of a running cluster
// through the management API of any member (docs/clustering.md, "Adding
// and removing nodes").

func newClusterAddNodeCmd() *cobra.Command {
	var f mgmtFlags
	var id int
	var addr string
	cmd := &cobra.Command{
		Use:   "add-node --node-id ID --cluster-addr HOST:PORT",
		Short: "Add a node to a running cluster (POST /api/cluster/nodes)",
		Long: `Add a node, started with --cluster-join, to the cluster of the node at --http
(any member): its cluster address goes into the registry of nodes, so every
member reaches it, and it becomes a learner of the metadata group, which
receives the metadata but does not vote. The metadata leader promotes it to a
voter as soon as it has caught up ("sluice cluster status" shows its role).`,
		Example: `  sluice cluster add-node --node-id 4 --cluster-addr 10.0.0.4:9190
  sluice cluster add-node --node-id 4 --cluster-addr 10.0.0.4:9190 --http http://10.0.0.2:15672`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id < 1 {
				return fmt.Errorf("--node-id is required (1 to 2147483647)")
			}
			if addr == "" {
				return fmt.Errorf("--cluster-addr is required: where the other nodes reach the new node")
			}
			raw, err := f.post("/api/cluster/nodes", map[string]any{"node_id": id, "cluster_addr": addr})
			if err != nil {
				return err
			}
			var ans struct {
				Role string `json:"role"`
			}
			json.Unmarshal(raw, &ans)
			if ans.Role == "learner" {
				fmt.Fprintf(cmd.OutOrStdout(), "added node %d (%s) as a learner; it becomes a voter once it has caught up\n", id, addr)
			} else {
				// It caught up and was promoted before the answer.
				fmt.Fprintf(cmd.OutOrStdout(), "added node %d (%s); it has caught up and is already a voter (%s)\n", id, addr, ans.Role)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&id, "node-id", 0, "the new node's id (its --node-id)")
	cmd.Flags().StringVar(&addr, "cluster-addr", "", "host:port the other nodes reach the new node at (its entry in its --cluster-peers)")
	f.register(cmd, false)
	return cmd
}

func newClusterRemoveNodeCmd() *cobra.Command {
	var f mgmtFlags
	var id int
	cmd := &cobra.Command{
		Use:   "remove-node --node-id ID",
		Short: "Remove a node from a running cluster (DELETE /api/cluster/nodes/{id})",
		Long: `Remove a node from the cluster of the node at --http (any member): it stops
being a member of the metadata group (a leader removed steps down and the
others elect a new one) and leaves the registry of nodes. Refused for the last
voter, and when the voters left would not have a majority running. The
removed node, if still running, logs that it was removed; stop it.`,
		Example: `  sluice cluster remove-node --node-id 3
  sluice cluster remove-node --node-id 1 --http http://10.0.0.2:15672`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id < 1 {
				return fmt.Errorf("--node-id is required (1 to 2147483647)")
			}
			if _, err := f.send(http.MethodDelete, "/api/cluster/nodes/"+strconv.Itoa(id), nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed node %d from the cluster\n", id)
			return nil
		},
	}
	cmd.Flags().IntVar(&id, "node-id", 0, "the id of the node to remove")
	f.register(cmd, false)
	return cmd
}
