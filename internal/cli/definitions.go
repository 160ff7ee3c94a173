package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, newDefinitionsCmd) }

// definitionSections are the parts of a definitions file the API imports,
// in the order they must be imported: a permission needs its user and
// vhost, a binding its exchange and queue. Policies come before the
// queues and exchanges they apply to, as RabbitMQ imports them.
// Of the parameters only the vhost limits (component "vhost-limits") are
// imported; users carry their own limits.
var definitionSections = []string{"vhosts", "users", "permissions", "topic_permissions", "parameters", "policies", "exchanges", "queues", "bindings"}

// ignoredSections are exported by RabbitMQ (and by Sluice, empty) but
// not imported by Sluice; so are parameters other than vhost limits.
var ignoredSections = []string{"global_parameters"}

func newDefinitionsCmd() *cobra.Command {
	var f mgmtFlags
	var vhost string
	cmd := &cobra.Command{
		Use:     "definitions",
		Aliases: []string{"defs"},
		Short:   "Export and import definitions (users, vhosts, permissions, policies, exchanges, queues, bindings)",
		Long: `Export a running broker's definitions as RabbitMQ-compatible JSON, or import
such a file (from Sluice or from RabbitMQ's "rabbitmqctl export_definitions")
through the management HTTP API (--http, default ` + defaultHTTP + `), as an
administrator. With --vhost, only that vhost's exchanges, queues and bindings.`,
		Example: `  sluice definitions export backup.json
  sluice definitions export > backup.json
  sluice definitions import backup.json
  sluice definitions export --vhost staging staging.json`,
	}
	f.register(cmd, false)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "", "only this vhost's exchanges, queues and bindings")
	path := func() string {
		if vhost == "" {
			return "/api/definitions"
		}
		return "/api/definitions/" + pathEsc(vhost)
	}

	export := &cobra.Command{
		Use:   "export [FILE]",
		Short: "Write the definitions to FILE (or standard output)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := f.get(path())
			if err != nil {
				return err
			}
			if len(args) == 0 || args[0] == "-" {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var d map[string]json.RawMessage
			if err := json.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			out, err := os.Create(args[0])
			if err != nil {
				return err
			}
			if err := printJSON(out, raw); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %s to %s\n", countDefinitions(d), args[0])
			return nil
		},
	}

	var batch int
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import definitions from FILE (- for standard input)",
		Long: `Import definitions from FILE. Objects are sent in batches of --batch, section
by section (vhosts, users, permissions, vhost limits, policies, exchanges, queues,
bindings), and a progress line goes to standard error after each batch when there
is more than one. Import adds and updates; it deletes nothing. It stops at the
first error and what was imported before stays (as with the API). Of the
parameters only the vhost limits (component vhost-limits) are imported, the
others skipped with a warning; users bring their limits.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 1 {
				return fmt.Errorf("--batch must be at least 1")
			}
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			var d map[string]json.RawMessage
			if err := json.Unmarshal(data, &d); err != nil {
				return fmt.Errorf("%s is not a definitions file: %w", args[0], err)
			}
			for _, s := range ignoredSections {
				var items []json.RawMessage
				if json.Unmarshal(d[s], &items) == nil && len(items) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: skipping %d %s (not supported by Sluice)\n", len(items), s)
				}
			}
			if err := keepVhostLimits(d, cmd.ErrOrStderr()); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			sections := map[string][]json.RawMessage{}
			total := 0
			if vhost != "" {
				// A vhost's import takes only its exchanges, queues and
				// bindings.
				for _, s := range definitionSections[:4] {
					delete(d, s)
				}
			}
			for _, s := range definitionSections {
				if len(d[s]) == 0 || string(d[s]) == "null" {
					continue
				}
				var items []json.RawMessage
				if err := json.Unmarshal(d[s], &items); err != nil {
					return fmt.Errorf("%s: %q is not a list: %w", args[0], s, err)
				}
				sections[s] = items
				total += len(items)
			}
			done, batches := 0, (total+batch-1)/batch
			for _, s := range definitionSections {
				items := sections[s]
				for start := 0; start < len(items); start += batch {
					chunk := items[start:min(start+batch, len(items))]
					if _, err := f.send(http.MethodPost, path(), map[string]any{s: chunk}); err != nil {
						return fmt.Errorf("import %s %d-%d of %d (%d objects imported before): %w", s, start+1, start+len(chunk), len(items), done, err)
					}
					done += len(chunk)
					if batches > 1 {
						fmt.Fprintf(cmd.ErrOrStderr(), "imported %d/%d objects (%d%%), %s %d/%d\n",
							done, total, done*100/total, s, start+len(chunk), len(items))
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s from %s\n", countDefinitions(d), args[0])
			return nil
		},
	}
	imp.Flags().IntVar(&batch, "batch", 1000, "objects per request")
	cmd.AddCommand(export, imp)
	return cmd
}

// countDefinitions counts the objects of each section: "2 vhosts, 1 users, ...".
func countDefinitions(d map[string]json.RawMessage) string {
	var parts []string
	for _, s := range definitionSections {
		var items []json.RawMessage
		json.Unmarshal(d[s], &items)
		parts = append(parts, fmt.Sprintf("%d %s", len(items), s))
	}
	return strings.Join(parts, ", ")
}

// keepVhostLimits keeps of d's parameters those Sluice imports, the vhost
// limits, and warns of the others it skips.
func keepVhostLimits(d map[string]json.RawMessage, stderr io.Writer) error {
	if len(d["parameters"]) == 0 || string(d["parameters"]) == "null" {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(d["parameters"], &items); err != nil {
		return fmt.Errorf(`"parameters" is not a list: %w`, err)
	}
	kept := []json.RawMessage{}
	for _, it := range items {
		var p struct {
			Component string `json:"component"`
		}
		if json.Unmarshal(it, &p) == nil && p.Component == "vhost-limits" {
			kept = append(kept, it)
		}
	}
	if n := len(items) - len(kept); n > 0 {
		fmt.Fprintf(stderr, "warning: skipping %d parameters other than vhost-limits (not supported by Sluice)\n", n)
	}
	d["parameters"], _ = json.Marshal(kept)
	return nil
}
