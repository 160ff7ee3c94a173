package mgmt

import (
	"net/http"
	"regexp"
	"strconv"

	"github.com/sluice-mq/sluice/internal/broker"
)

// Members of quorum queues (administrator), RabbitMQ's endpoints for
// rabbitmq-queues add_member, delete_member, grow and shrink:
//
//	POST   /api/queues/quorum/{vhost}/{name}/replicas/add     {"node": N}
//	DELETE /api/queues/quorum/{vhost}/{name}/replicas/delete  {"node": N}
//	POST   /api/queues/quorum/replicas/on/{node}/grow  {"strategy": "all"|"even", "vhost_pattern", "queue_pattern"}
//	DELETE /api/queues/quorum/replicas/on/{node}/shrink
//
// A node is named as /api/nodes names it, or by its id. The changes are
// recorded and carried out by each queue's leader (broker.Router.
// AddQuorumMember): the answer comes once recorded; the queue's members
// show the progress.

func (a *API) quorumMemberRoutes() {
	a.handle("POST /api/queues/quorum/{vhost}/{name}/replicas/add", levelAdmin, a.addQuorumMember)
	a.handle("DELETE /api/queues/quorum/{vhost}/{name}/replicas/delete", levelAdmin, a.deleteQuorumMember)
	a.handle("POST /api/queues/quorum/replicas/on/{node}/grow", levelAdmin, a.growQuorumQueues)
	a.handle("DELETE /api/queues/quorum/replicas/on/{node}/shrink", levelAdmin, a.shrinkQuorumQueues)
}

// nodeIDOf resolves a node named as /api/nodes names it, or by its id.
func (a *API) nodeIDOf(ref string) (uint64, error) {
	if a.opts.ClusterNodes == nil {
		return 0, &apiError{http.StatusNotFound, "Object Not Found", "this server is not a node of a cluster"}
	}
	for _, cn := range a.opts.ClusterNodes() {
		if ref == strconv.FormatUint(cn.Node.ID, 10) || ref == a.nodeNameOf(cn.Node.ID) {
			return cn.Node.ID, nil
		}
	}
	return 0, badRequest("no node %q", ref)
}

func (a *API) quorumMemberChange(r *http.Request, s *session, add bool) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		Node string `json:"node"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	id, err := a.nodeIDOf(body.Node)
	if err != nil {
		return nil, err
	}
	if add {
		err = a.opts.Router.AddQuorumMember(vh, pathValue(r, "name"), id)
	} else {
		err = a.opts.Router.DeleteQuorumMember(vh, pathValue(r, "name"), id)
	}
	if err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (a *API) addQuorumMember(r *http.Request, s *session) (any, error) {
	return a.quorumMemberChange(r, s, true)
}

func (a *API) deleteQuorumMember(r *http.Request, s *session) (any, error) {
	return a.quorumMemberChange(r, s, false)
}

// memberResultsJSON lists a grow's or shrink's outcome per queue:
// {"vhost", "name", "size", "result": "ok" or the error}.
func memberResultsJSON(res []broker.QuorumMemberResult) []map[string]any {
	out := make([]map[string]any, 0, len(res))
	for _, q := range res {
		result := "ok"
		if q.Err != nil {
			result = q.Err.Error()
		}
		out = append(out, map[string]any{"vhost": q.Vhost, "name": q.Name, "size": q.Size, "result": result})
	}
	return out
}

func (a *API) growQuorumQueues(r *http.Request, _ *session) (any, error) {
	id, err := a.nodeIDOf(pathValue(r, "node"))
	if err != nil {
		return nil, err
	}
	body := struct {
		Strategy     string `json:"strategy"`
		VhostPattern string `json:"vhost_pattern"`
		QueuePattern string `json:"queue_pattern"`
	}{Strategy: "all"}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	var pats [2]*regexp.Regexp
	for i, p := range []string{body.VhostPattern, body.QueuePattern} {
		if p == "" {
			continue
		}
		if pats[i], err = regexp.Compile(p); err != nil {
			return nil, badRequest("pattern %q: %v", p, err)
		}
	}
	res, err := a.opts.Router.GrowQuorumQueues(id, body.Strategy, pats[0], pats[1])
	if err != nil {
		return nil, err
	}
	return memberResultsJSON(res), nil
}

func (a *API) shrinkQuorumQueues(r *http.Request, _ *session) (any, error) {
	id, err := a.nodeIDOf(pathValue(r, "node"))
	if err != nil {
		return nil, err
	}
	return memberResultsJSON(a.opts.Router.ShrinkQuorumQueues(id)), nil
}
