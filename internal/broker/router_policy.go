package broker

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sluice-mq/sluice/internal/broker/queue"
)

// The Router's side of policies (policy.go): each vhost keeps its
// policies compiled (vhost.pols); a change is made durable in the
// metadata store under the vhost's defs lock, then installed under mu
// together with what it changes in every queue and exchange of the vhost.
// Queues take a new configuration through SetConfig, which does no I/O,
// so nothing waits on the disk under mu.

// loadPolicies compiles a vhost's stored policies.
func (r *Router) loadPolicies(vh string) policySet {
	return policySet{
		user:     compilePolicies(r.meta.Policies(vh)),
		operator: compilePolicies(r.meta.OperatorPolicies(vh)),
	}
}

// queuePolicy returns a queue's arguments with the policies of pols
// applied, checked, and what was applied. Should the result not check
// (it cannot, policies are checked when set), the queue keeps what its
// own arguments ask for.
func (r *Router) queuePolicy(vh string, qe *queueEntry, pols policySet) (queueArgs, appliedPolicy) {
	typ := qe.qa.queueType
	user := matchPolicy(pols.user, qe.def.Name, typ)
	op := matchPolicy(pols.operator, qe.def.Name, typ)
	if user == nil && op == nil {
		qa, err := parseQueueArgs(qe.args, qe.def.Durable, qe.def.Exclusive, qe.def.AutoDelete)
		if err != nil {
			return qe.qa, appliedPolicy{}
		}
		return qa, appliedPolicy{}
	}
	eff, ap := queueEffectiveArgs(qe.args, typ, user, op)
	qa, err := parseQueueArgs(eff, qe.def.Durable, qe.def.Exclusive, qe.def.AutoDelete)
	if err != nil {
		r.log.Warn("policy not applied", "vhost", vh, "queue", qe.def.Name, "policy", ap.policy, "operator_policy", ap.operator, "err", err)
		if qa, err = parseQueueArgs(qe.args, qe.def.Durable, qe.def.Exclusive, qe.def.AutoDelete); err != nil {
			return qe.qa, appliedPolicy{}
		}
		return qa, appliedPolicy{}
	}
	return qa, ap
}

// applyQueuePolicyLocked brings a queue up to date with its vhost's
// policies, telling the queue when its configuration changed (always
// with force: the handle may have been opened with other policies).
// r.mu is held (write).
func (r *Router) applyQueuePolicyLocked(v *vhost, qe *queueEntry, force bool) {
	old := qe.qa
	qe.qa, qe.applied = r.queuePolicy(v.name, qe, v.pols)
	switch q := qe.q.(type) {
	case interface{ SetStreamConfig(queue.StreamConfig) }:
		if qe.qa.queueType == QueueTypeStream && (force || old.stream != qe.qa.stream) {
			q.SetStreamConfig(qe.qa.stream)
		}
	case interface{ SetConfig(queue.Config) }:
		if force || !sameConfig(old.cfg, qe.qa.cfg) {
			q.SetConfig(qe.qa.cfg)
		}
	}
}

// sameConfig reports whether two queue configurations are equal.
func sameConfig(a, b queue.Config) bool {
	ka, kb := a.DeadLetterRoutingKey, b.DeadLetterRoutingKey
	if (ka == nil) != (kb == nil) || ka != nil && *ka != *kb {
		return false
	}
	a.DeadLetterRoutingKey, b.DeadLetterRoutingKey = nil, nil
	return a == b
}

// applyExchangePolicyLocked brings an exchange up to date with its
// vhost's policies: its alternate exchange is its argument's, else its
// policy's. r.mu is held (write), or the vhost is not installed yet.
func (r *Router) applyExchangePolicyLocked(v *vhost, x *exchange) {
	x.applied = appliedPolicy{}
	x.alternate, x.hasAlt = "", false
	if p := matchPolicy(v.pols.user, x.def.Name, ""); p != nil {
		x.applied = appliedPolicy{policy: p.def.Name, effective: maps.Clone(p.set)}
		if alt, ok := p.set["alternate-exchange"].(string); ok {
			x.alternate, x.hasAlt = alt, true
		}
	}
	if alt, ok := stringArg(x.args["alternate-exchange"]); ok {
		x.alternate, x.hasAlt = alt, true
	}
}

// SetPolicy creates or replaces a policy (operator: an operator policy)
// in vhost p.Vhost and applies it at once to the vhost's queues and
// exchanges. A bad pattern, apply-to or definition is ErrInvalidPolicy;
// an empty apply-to means "all".
func (r *Router) SetPolicy(p Policy, operator bool) error {
	p, set, err := checkPolicy(p, operator)
	if err != nil {
		return err
	}
	err = r.changePolicies(p.Vhost, func() error {
		if operator {
			return r.meta.SetOperatorPolicy(p)
		}
		return r.meta.SetPolicy(p)
	})
	if err == nil {
		var mirroring, inert []string
		for _, k := range slices.Sorted(maps.Keys(set)) {
			switch {
			case strings.HasPrefix(k, "ha-"):
				mirroring = append(mirroring, k)
			case policyKeys[k].inert:
				inert = append(inert, k)
			}
		}
		if len(mirroring) > 0 {
			r.log.Warn("classic mirroring policy keys have no effect on a single node", "vhost", p.Vhost, "policy", p.Name, "keys", mirroring)
		}
		if len(inert) > 0 {
			r.log.Info("policy keys accepted with no effect on a single node", "vhost", p.Vhost, "policy", p.Name, "keys", inert)
		}
	}
	return err
}

// ClearPolicy removes a policy (operator: an operator policy); what it
// gave the vhost's queues and exchanges goes with it.
func (r *Router) ClearPolicy(vh, name string, operator bool) error {
	return r.changePolicies(vh, func() error {
		if operator {
			return r.meta.ClearOperatorPolicy(vh, name)
		}
		return r.meta.ClearPolicy(vh, name)
	})
}

// changePolicies makes a policy change durable, then installs the
// vhost's policies anew and applies them.
func (r *Router) changePolicies(vh string, change func() error) error {
	v, err := r.lockDefs(vh)
	if err != nil {
		return fmt.Errorf("%w: no vhost '%s'", ErrNotFound, vh)
	}
	defer v.defs.Unlock()
	if err := change(); err != nil {
		return err
	}
	r.reapplyPolicies(v)
	return nil
}

// reapplyPolicies installs v's policies anew from the store and applies
// them; v's defs lock is held.
func (r *Router) reapplyPolicies(v *vhost) {
	pols := r.loadPolicies(v.name)
	r.mu.Lock()
	defer r.mu.Unlock()
	v.pols = pols
	for _, qe := range v.queues {
		r.applyQueuePolicyLocked(v, qe, false)
	}
	for _, x := range v.exchanges {
		r.applyExchangePolicyLocked(v, x)
	}
}

// Policies returns a vhost's policies ("": every vhost's), or its
// operator policies, sorted by vhost, then name.
func (r *Router) Policies(vh string, operator bool) []Policy {
	if operator {
		return r.meta.OperatorPolicies(vh)
	}
	return r.meta.Policies(vh)
}

// AppliedPolicy is what the policies give one queue or exchange, for the
// management API.
type AppliedPolicy struct {
	Policy, OperatorPolicy string         // "" for none
	Effective              map[string]any // the effective policy definition
}

func (ap appliedPolicy) export() AppliedPolicy {
	eff := maps.Clone(ap.effective)
	if eff == nil {
		eff = map[string]any{}
	}
	return AppliedPolicy{Policy: ap.policy, OperatorPolicy: ap.operator, Effective: eff}
}

// ExchangePolicies returns what the policies give each exchange of a
// vhost, by exchange name.
func (r *Router) ExchangePolicies(vh string) map[string]AppliedPolicy {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]AppliedPolicy{}
	if v, ok := r.vhosts[vh]; ok {
		for name, x := range v.exchanges {
			out[name] = x.applied.export()
		}
	}
	return out
}
