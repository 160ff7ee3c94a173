package cli

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func init() {
	clientCommands = append(clientCommands,
		func() *cobra.Command { return newPolicyCmd(false) },
		func() *cobra.Command { return newPolicyCmd(true) })
}

// policyKind names the API path and the words for policies or operator
// policies.
type policyKind struct {
	operator bool
	path     string // under /api/
	noun     string
	nouns    string
}

func policyKindOf(operator bool) policyKind {
	if operator {
		return policyKind{true, "operator-policies", "operator policy", "operator policies"}
	}
	return policyKind{false, "policies", "policy", "policies"}
}

func newPolicyCmd(operator bool) *cobra.Command {
	var f mgmtFlags
	k := policyKindOf(operator)
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "List, set and clear RabbitMQ policies (management API)",
		Long: `Manage the policies of a running broker through its management HTTP API
(--http, default ` + defaultHTTP + `). A policy gives the queues and exchanges of a
vhost whose names match its pattern (a regular expression) the settings of its
definition, such as message-ttl, max-length, dead-letter-exchange or
alternate-exchange; of the policies matching an object the one of highest
priority applies. A change applies at once to existing queues and exchanges.
Queue arguments take precedence (for message-ttl, expires, max-length,
max-length-bytes and delivery-limit the lower value wins), as in RabbitMQ.`,
		Example: `  sluice policy set ttl '^orders\.' '{"message-ttl":60000,"dead-letter-exchange":"dlx"}' --apply-to queues
  sluice policy list
  sluice policy clear ttl`,
	}
	if operator {
		cmd.Use = "operator-policy"
		cmd.Short = "List, set and clear RabbitMQ operator policies (management API)"
		cmd.Long = `Manage the operator policies of a running broker through its management HTTP
API (--http, default ` + defaultHTTP + `). An operator policy caps what applications
and users' policies ask for: for each of its keys (expires, message-ttl,
max-length, max-length-bytes, delivery-limit) the lower of its value and the
queue's wins. Administrator only.`
		cmd.Example = `  sluice operator-policy set cap '.*' '{"max-length":100000}' --apply-to queues
  sluice operator-policy list
  sluice operator-policy clear cap`
	}
	f.register(cmd, true)
	cmd.AddCommand(newPolicyListCmd(&f, k), newPolicySetCmd(&f, k), newPolicyClearCmd(&f, k))
	return cmd
}

func newPolicyListCmd(f *mgmtFlags, k policyKind) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List " + k.nouns,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			header := []string{"NAME", "PATTERN", "APPLY-TO", "PRIORITY", "DEFINITION"}
			if all {
				header = append([]string{"VHOST"}, header...)
			}
			return list(cmd, f, f.vhostPath(k.path, all), header, func(p map[string]any) []string {
				row := []string{str(p["name"]), str(p["pattern"]), str(p["apply-to"]), str(p["priority"]), str(p["definition"])}
				if all {
					row = append([]string{str(p["vhost"])}, row...)
				}
				return row
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-vhosts", "A", false, "list the "+k.nouns+" of every vhost")
	return cmd
}

func newPolicySetCmd(f *mgmtFlags, k policyKind) *cobra.Command {
	var (
		priority int
		applyTo  string
	)
	cmd := &cobra.Command{
		Use:     "set NAME PATTERN DEFINITION",
		Aliases: []string{"declare", "add"},
		Short:   "Create or replace a " + k.noun,
		Long: `Create or replace the ` + k.noun + ` NAME in --vhost. PATTERN is a regular
expression over queue and exchange names; DEFINITION is a JSON object of
settings.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, a []string) error {
			var def map[string]any
			if err := json.Unmarshal([]byte(a[2]), &def); err != nil {
				return fmt.Errorf("definition: not a JSON object: %w", err)
			}
			body := map[string]any{"pattern": a[1], "definition": def, "priority": priority, "apply-to": applyTo}
			st, err := f.send(http.MethodPut, "/api/"+k.path+"/"+pathEsc(f.vhost)+"/"+pathEsc(a[0]), body)
			if err != nil {
				return err
			}
			verb := "set"
			if st == http.StatusNoContent {
				verb = "replaced"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", verb, k.noun, a[0])
			return nil
		},
	}
	cmd.Flags().IntVar(&priority, "priority", 0, "of the policies matching an object, the highest priority applies")
	cmd.Flags().StringVar(&applyTo, "apply-to", "all", "queues, exchanges, all, classic_queues, quorum_queues or streams")
	return cmd
}

func newPolicyClearCmd(f *mgmtFlags, k policyKind) *cobra.Command {
	return &cobra.Command{
		Use:     "clear NAME...",
		Aliases: []string{"delete", "rm"},
		Short:   "Remove " + k.nouns,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			for _, name := range a {
				if _, err := f.send(http.MethodDelete, "/api/"+k.path+"/"+pathEsc(f.vhost)+"/"+pathEsc(name), nil); err != nil {
					return fmt.Errorf("clear %s %s: %w", k.noun, name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "cleared %s %s\n", k.noun, name)
			}
			return nil
		},
	}
}
