package broker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/sluice-mq/sluice/internal/fieldtable"
	"github.com/sluice-mq/sluice/internal/meta"
)

// Policies and operator policies, as RabbitMQ has them: a policy gives
// the queues and exchanges of a vhost whose names match its pattern the
// settings of its definition, so that operators configure dead-lettering,
// TTLs and limits without the applications' x-arguments. Of the policies
// matching an object the one of highest priority applies (on a tie, the
// one whose name sorts first: RabbitMQ leaves ties undefined); likewise of
// the operator policies. Each applies live, to the objects that exist and
// to those declared later.
//
// Precedence follows RabbitMQ's classic and quorum queues: for the numeric
// keys (message-ttl, expires, max-length, max-length-bytes,
// delivery-limit) the lower of the policy's value and the queue's
// x-argument wins, for the others the x-argument wins over the policy.
// An operator policy (those five keys only) caps: the lower of its value
// and what the argument and the user policy gave wins.

// Policy is a policy or operator policy as stored.
type Policy = meta.Policy

// Policy apply-to values.
const (
	ApplyToQueues        = "queues"
	ApplyToExchanges     = "exchanges"
	ApplyToAll           = "all"
	ApplyToClassicQueues = "classic_queues"
	ApplyToQuorumQueues  = "quorum_queues"
	ApplyToStreams       = "streams"
)

var applyToValues = []string{ApplyToQueues, ApplyToExchanges, ApplyToAll, ApplyToClassicQueues, ApplyToQuorumQueues, ApplyToStreams}

// policyKey is one key a definition may hold.
type policyKey struct {
	check func(v any) error
	// operator: allowed in operator policies, merged by taking the lower
	// value; it is also merged with the x-argument by the lower value.
	operator bool
	// queueArg and streamArg are the x-arguments the key stands for on a
	// work queue (classic, quorum) and on a stream; "" for neither.
	queueArg, streamArg string
	exchange            bool // applies to exchanges (alternate-exchange)
	// inert: accepted and reported, no effect on one node
	// (docs/amqp-compatibility.md, "Policies").
	inert bool
}

// maxExpiryMs is the largest message-ttl and expires RabbitMQ accepts.
const maxExpiryMs = 1<<32 - 1

var policyKeys = map[string]policyKey{
	"message-ttl":                   {check: polIntBetween(0, maxExpiryMs), operator: true, queueArg: "x-message-ttl"},
	"expires":                       {check: polIntBetween(1, maxExpiryMs), operator: true, queueArg: "x-expires"},
	"max-length":                    {check: polIntAtLeast(0), operator: true, queueArg: "x-max-length"},
	"max-length-bytes":              {check: polIntAtLeast(0), operator: true, queueArg: "x-max-length-bytes", streamArg: "x-max-length-bytes"},
	"delivery-limit":                {check: polIntAtLeast(-1), operator: true, queueArg: "x-delivery-limit"},
	"overflow":                      {check: polOneOf("drop-head", "reject-publish", "reject-publish-dlx"), queueArg: "x-overflow"},
	"dead-letter-exchange":          {check: polString, queueArg: "x-dead-letter-exchange"},
	"dead-letter-routing-key":       {check: polString, queueArg: "x-dead-letter-routing-key"},
	"alternate-exchange":            {check: polString, exchange: true},
	"max-age":                       {check: polMaxAge, streamArg: "x-max-age"},
	"stream-max-segment-size-bytes": {check: polIntBetween(1, maxStreamSegmentBytes), streamArg: "x-stream-max-segment-size-bytes"},

	"dead-letter-strategy":   {check: polOneOf("at-most-once", "at-least-once"), inert: true},
	"queue-mode":             {check: polOneOf("default", "lazy"), inert: true},
	"queue-version":          {check: polIntBetween(1, 2), inert: true},
	"queue-leader-locator":   {check: polOneOf("client-local", "balanced"), inert: true},
	"queue-master-locator":   {check: polOneOf("min-masters", "client-local", "random"), inert: true},
	"initial-cluster-size":   {check: polIntAtLeast(1), inert: true},
	"target-group-size":      {check: polIntAtLeast(1), inert: true},
	"consumer-timeout":       {check: polIntAtLeast(1), inert: true},
	"ha-mode":                {check: polOneOf("all", "exactly", "nodes"), inert: true},
	"ha-params":              {check: polHAParams, inert: true},
	"ha-sync-mode":           {check: polOneOf("manual", "automatic"), inert: true},
	"ha-sync-batch-size":     {check: polIntAtLeast(1), inert: true},
	"ha-promote-on-shutdown": {check: polOneOf("when-synced", "always"), inert: true},
	"ha-promote-on-failure":  {check: polOneOf("when-synced", "always"), inert: true},
}

// PolicyKeys returns the keys a policy definition may hold, sorted; with
// operator, those an operator policy may hold.
func PolicyKeys(operator bool) []string {
	var out []string
	for k, pk := range policyKeys {
		if !operator || pk.operator {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// policyInt reads an integer from a decoded JSON value.
func policyInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return IntArg(v)
}

func polIntAtLeast(lo int64) func(any) error {
	return polIntBetween(lo, 1<<62)
}

func polIntBetween(lo, hi int64) func(any) error {
	return func(v any) error {
		n, ok := policyInt(v)
		switch {
		case !ok:
			return fmt.Errorf("%v is not an integer", v)
		case n < lo:
			return fmt.Errorf("%d is below %d", n, lo)
		case n > hi:
			return fmt.Errorf("%d is above %d", n, hi)
		}
		return nil
	}
}

func polOneOf(values ...string) func(any) error {
	return func(v any) error {
		if s, ok := v.(string); ok && slices.Contains(values, s) {
			return nil
		}
		return fmt.Errorf("%v is not one of %v", v, values)
	}
}

func polString(v any) error {
	if _, ok := v.(string); !ok {
		return fmt.Errorf("%v is not a string", v)
	}
	return nil
}

func polMaxAge(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%v is not a string", v)
	}
	_, err := ParseMaxAge(s)
	return err
}

// polHAParams is a count (ha-mode exactly) or a list of node names (nodes).
func polHAParams(v any) error {
	if l, ok := v.([]any); ok {
		for _, e := range l {
			if err := polString(e); err != nil {
				return err
			}
		}
		return nil
	}
	return polIntAtLeast(1)(v)
}

// checkPolicy validates p as RabbitMQ does (a bad pattern, apply-to or
// definition is KindInvalid) and returns it with its definition in
// canonical form (compact, keys sorted).
func checkPolicy(p Policy, operator bool) (Policy, map[string]any, error) {
	bad := func(format string, args ...any) (Policy, map[string]any, error) {
		return Policy{}, nil, fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
	}
	if p.Name == "" {
		return bad("a policy needs a name")
	}
	if p.ApplyTo == "" {
		p.ApplyTo = ApplyToAll
	}
	if !slices.Contains(applyToValues, p.ApplyTo) {
		return bad("apply-to '%s' is not one of %v", p.ApplyTo, applyToValues)
	}
	if _, err := regexp.Compile(p.Pattern); err != nil {
		return bad("pattern '%s': %v", p.Pattern, err)
	}
	def, err := decodeDefinition(p.Definition)
	if err != nil {
		return bad("definition: %v", err)
	}
	if len(def) == 0 {
		return bad("the definition is empty")
	}
	for _, k := range slices.Sorted(maps.Keys(def)) {
		pk, ok := policyKeys[k]
		if !ok || (operator && !pk.operator) {
			what := "policy"
			if operator {
				what = "operator policy"
			}
			return bad("[<<\"%s\">>] are not recognised %s settings", k, what)
		}
		if err := pk.check(def[k]); err != nil {
			return bad("%s: %v", k, err)
		}
	}
	if mode, ok := def["ha-mode"]; ok {
		_, hasParams := def["ha-params"]
		if mode == "all" && hasParams {
			return bad("ha-mode all takes no ha-params")
		}
		if mode != "all" && !hasParams {
			return bad("ha-mode %v needs ha-params", mode)
		}
	} else if _, ok := def["ha-params"]; ok {
		return bad("ha-params without ha-mode")
	}
	canon, err := json.Marshal(def) // maps marshal with sorted keys
	if err != nil {
		return bad("definition: %v", err)
	}
	p.Definition = canon
	return p, def, nil
}

// decodeDefinition decodes a definition, numbers as json.Number.
func decodeDefinition(b []byte) (map[string]any, error) {
	var def map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&def); err != nil {
		return nil, err
	}
	if def == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return def, nil
}

// compiledPolicy is a policy ready to match.
type compiledPolicy struct {
	def Policy
	re  *regexp.Regexp
	set map[string]any // decoded definition
}

// policySet is a vhost's policies and operator policies, each sorted by
// priority (highest first), then name.
type policySet struct {
	user, operator []*compiledPolicy
}

// compilePolicies prepares stored policies for matching; one that no
// longer compiles (stored by a version with other rules) is skipped.
func compilePolicies(ps []Policy) []*compiledPolicy {
	out := make([]*compiledPolicy, 0, len(ps))
	for _, p := range ps {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			continue
		}
		set, err := decodeDefinition(p.Definition)
		if err != nil {
			continue
		}
		out = append(out, &compiledPolicy{def: p, re: re, set: set})
	}
	slices.SortFunc(out, func(a, b *compiledPolicy) int {
		return cmp.Or(cmp.Compare(b.def.Priority, a.def.Priority), cmp.Compare(a.def.Name, b.def.Name))
	})
	return out
}

// appliesTo reports whether apply-to covers an exchange (queueType "")
// or a queue of queueType.
func appliesTo(applyTo, queueType string) bool {
	switch applyTo {
	case ApplyToAll:
		return true
	case ApplyToExchanges:
		return queueType == ""
	case ApplyToQueues:
		return queueType != ""
	case ApplyToClassicQueues:
		return queueType == QueueTypeClassic
	case ApplyToQuorumQueues:
		return queueType == QueueTypeQuorum
	case ApplyToStreams:
		return queueType == QueueTypeStream
	}
	return false
}

// matchPolicy returns the policy of ps that applies to name, nil if none.
func matchPolicy(ps []*compiledPolicy, name, queueType string) *compiledPolicy {
	for _, p := range ps {
		if appliesTo(p.def.ApplyTo, queueType) && p.re.MatchString(name) {
			return p
		}
	}
	return nil
}

// appliedPolicy is what the policies give one queue or exchange.
type appliedPolicy struct {
	policy, operator string         // names of the policies applied, "" for none
	effective        map[string]any // effective_policy_definition
}

// lowerInt returns the lower of two integer values, a negative one
// (delivery-limit -1) meaning no limit.
func lowerInt(a, b any) any {
	x, okx := policyInt(a)
	y, oky := policyInt(b)
	switch {
	case !okx || x < 0:
		return b
	case !oky || y < 0:
		return a
	case y < x:
		return b
	}
	return a
}

// effectiveDefinition merges the policy and operator policy applying to
// one queue: an operator key caps the policy's by the lower value.
func effectiveDefinition(user, op *compiledPolicy) map[string]any {
	eff := map[string]any{}
	if user != nil {
		maps.Copy(eff, user.set)
	}
	if op != nil {
		for k, v := range op.set {
			if cur, ok := eff[k]; ok {
				eff[k] = lowerInt(cur, v)
			} else {
				eff[k] = v
			}
		}
	}
	return eff
}

// queueEffectiveArgs returns a queue's x-arguments with the policies
// applied: for each key the effective definition holds, the argument
// the key stands for is set when the queue has none, and for the
// numeric keys lowered to the policy's value when the queue's is higher.
// An operator policy's key caps the result the same way, so the merge is
// one step. Inert keys change nothing.
func queueEffectiveArgs(args fieldtable.Table, queueType string, user, op *compiledPolicy) (fieldtable.Table, appliedPolicy) {
	ap := appliedPolicy{effective: effectiveDefinition(user, op)}
	if user != nil {
		ap.policy = user.def.Name
	}
	if op != nil {
		ap.operator = op.def.Name
	}
	out := maps.Clone(args)
	if out == nil {
		out = fieldtable.Table{}
	}
	set := func(key string, v any, numeric bool) {
		arg := policyKeys[key].queueArg
		if queueType == QueueTypeStream {
			arg = policyKeys[key].streamArg
		}
		if arg == "" {
			return
		}
		if numeric {
			n, ok := policyInt(v)
			if !ok {
				return
			}
			if key == "delivery-limit" && n < 0 {
				return // -1: no limit from the policy
			}
			if cur, ok := IntArg(out[arg]); ok && cur <= n {
				return
			}
			out[arg] = n
			return
		}
		if _, present := out[arg]; !present {
			out[arg] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ap.effective)) {
		pk := policyKeys[k]
		if pk.inert {
			continue
		}
		set(k, ap.effective[k], pk.operator)
	}
	return out, ap
}
