package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// Membership of a cluster (administrator): POST /api/cluster/nodes adds a
// node, DELETE /api/cluster/nodes/{id} removes one (docs/clustering.md,
// "Adding and removing nodes"). The work is the server's
// (Options.Membership); a single node answers 404 with a reason.

// Membership changes the nodes of a cluster.
type Membership interface {
	// AddNode adds node id, reachable by the other nodes at clusterAddr,
	// as a learner of the metadata group: it returns once the change has
	// applied on this node, with the node's role then ("learner", or
	// "follower"/"leader" if it already was a voter).
	AddNode(ctx context.Context, id uint64, clusterAddr string) (role string, err error)
	// RemoveNode removes node id from the metadata group and then from
	// the registry of nodes.
	RemoveNode(ctx context.Context, id uint64) error
}

// MembershipError is a membership change refused or not made, with the
// HTTP status to answer (400, 404, 409, 503).
type MembershipError struct {
	Status int
	Reason string
}

func (e *MembershipError) Error() string { return e.Reason }

// membershipRoutes registers the endpoints.
func (a *API) membershipRoutes() {
	a.handle("POST /api/cluster/nodes", levelAdmin, a.addClusterNode)
	a.handle("DELETE /api/cluster/nodes/{id}", levelAdmin, a.removeClusterNode)
}

func (a *API) membershipOrNotFound() (Membership, error) {
	if a.opts.Membership == nil {
		return nil, &apiError{http.StatusNotFound, "Object Not Found", "this server is not a node of a cluster"}
	}
	return a.opts.Membership, nil
}

func fromMembership(err error) error {
	var me *MembershipError
	if errors.As(err, &me) {
		name := map[int]string{
			http.StatusBadRequest: "bad_request", http.StatusNotFound: "Object Not Found",
			http.StatusConflict: "conflict", http.StatusServiceUnavailable: "unavailable",
		}[me.Status]
		if name == "" {
			name = "internal_error"
		}
		return &apiError{me.Status, name, me.Reason}
	}
	return err
}

// addClusterNode: {"node_id": 4, "cluster_addr": "host:port"}.
func (a *API) addClusterNode(r *http.Request, _ *session) (any, error) {
	m, err := a.membershipOrNotFound()
	if err != nil {
		return nil, err
	}
	var body struct {
		NodeID      json.Number `json:"node_id"`
		ClusterAddr string      `json:"cluster_addr"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	id, err := parseNodeID(body.NodeID.String())
	if err != nil {
		return nil, err
	}
	if h, p, err := net.SplitHostPort(body.ClusterAddr); err != nil || h == "" || p == "" {
		return nil, badRequest("cluster_addr %q: want host:port", body.ClusterAddr)
	}
	role, err := m.AddNode(r.Context(), id, body.ClusterAddr)
	if err != nil {
		return nil, fromMembership(err)
	}
	return map[string]any{"node_id": id, "cluster_addr": body.ClusterAddr, "role": role}, nil
}

func (a *API) removeClusterNode(r *http.Request, _ *session) (any, error) {
	m, err := a.membershipOrNotFound()
	if err != nil {
		return nil, err
	}
	id, err := parseNodeID(pathValue(r, "id"))
	if err != nil {
		return nil, err
	}
	if err := m.RemoveNode(r.Context(), id); err != nil {
		return nil, fromMembership(err)
	}
	return noContent{}, nil
}

func parseNodeID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 31)
	if err != nil || id == 0 {
		return 0, badRequest("node id %q: want 1 to 2147483647", s)
	}
	return id, nil
}
