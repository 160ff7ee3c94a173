package kafka

// FindCoordinator, versions 0-4.
//
// Each key's coordinator comes from the server's Cluster (cluster.go), at
// the address of the client's kind of listener; one that is not
// available is COORDINATOR_NOT_AVAILABLE, which clients retry. On a single
// node this broker (NodeID) coordinates every group and transactional id,
// at the listener's advertised address. v4 batches keys
// (CoordinatorKeys). A key type other than 0 (group), 1 (transaction) or
// 2 (share-group state, KIP-932) is INVALID_REQUEST; a transactional id's coordinator serves the
// transaction APIs (22, 24-26, 28).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFindCoordinator(c *conn, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	co := kmsg.NewFindCoordinatorResponseCoordinator()
	if req.CoordinatorType < 0 || req.CoordinatorType > 2 {
		co.NodeID, co.Host, co.Port = -1, "", -1
		co.ErrorCode, co.ErrorMessage = codeAndMessage(reqErr(kerr.InvalidRequest, "unknown coordinator key type %d", req.CoordinatorType))
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			co := co
			co.Key = key
			if co.ErrorCode == 0 {
				findCoordinatorAllowed(c, req.CoordinatorType, key, &co)
			}
			if co.ErrorCode == 0 {
				c.coordinator(req.CoordinatorType, key, &co)
			}
			resp.Coordinators = append(resp.Coordinators, co)
		}
		return resp, nil
	}
	if co.ErrorCode == 0 {
		findCoordinatorAllowed(c, req.CoordinatorType, req.CoordinatorKey, &co)
	}
	if co.ErrorCode == 0 {
		c.coordinator(req.CoordinatorType, req.CoordinatorKey, &co)
	}
	resp.NodeID, resp.Host, resp.Port = co.NodeID, co.Host, co.Port
	resp.ErrorCode, resp.ErrorMessage = co.ErrorCode, co.ErrorMessage
	return resp, nil
}

// findCoordinatorAllowed refuses a key the principal may not DESCRIBE: a
// group (GROUP_AUTHORIZATION_FAILED) or a transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED). Share groups are groups.
func findCoordinatorAllowed(c *conn, keyType int8, key string, co *kmsg.FindCoordinatorResponseCoordinator) {
	rt, code := auth.ResourceGroup, errGroupAuth
	if keyType == 1 {
		rt, code = auth.ResourceTransactionalID, errTxnIDAuth
	}
	if !c.allowed(rt, key, auth.OpDescribe) {
		co.NodeID, co.Host, co.Port = -1, "", -1
		co.ErrorCode, co.ErrorMessage = codeAndMessage(reqErr(code, "DESCRIBE on %s %q is not allowed", rt, key))
	}
}

// coordinator fills co with key's coordinator, or COORDINATOR_NOT_AVAILABLE.
func (c *conn) coordinator(keyType int8, key string, co *kmsg.FindCoordinatorResponseCoordinator) {
	id := c.s.cluster.Coordinator(keyType, key)
	var e endpoint
	ok := id == c.s.self
	if ok {
		// This broker: the listener's address, without a walk over
		// the brokers (a single node's only answer).
		e.id = id
		e.host, e.port = c.advertised()
	} else {
		e, ok = c.endpoint(id)
	}
	if !ok {
		co.NodeID, co.Host, co.Port = -1, "", -1
		co.ErrorCode, co.ErrorMessage = codeAndMessage(reqErr(kerr.CoordinatorNotAvailable, "no coordinator is available for %q", key))
		return
	}
	co.NodeID, co.Host, co.Port = e.id, e.host, e.port
}
