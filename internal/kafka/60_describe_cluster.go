package kafka

// DescribeCluster, versions 0-1.
//
// The brokers, with their racks, and the controller, from the server's
// Cluster (cluster.go): on a single node, NodeID alone, also the
// controller. v1 asks for broker
// endpoints (EndpointType 1); asking this broker for controller endpoints
// (2) is UNSUPPORTED_ENDPOINT_TYPE, as in Kafka. Cluster authorized
// operations (KIP-430) are computed when asked for, else reported as not
// requested (-2147483648). Needs DESCRIBE on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(c *conn, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if !c.allowedCluster(auth.OpDescribe) {
		resp.ErrorCode, resp.ErrorMessage = codeAndMessage(reqErr(errClusterAuth, "DESCRIBE on the cluster is not allowed"))
		return resp, nil
	}
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode, resp.ErrorMessage = codeAndMessage(reqErr(kerr.UnsupportedEndpointType, "endpoint type %d is not served by a broker", req.EndpointType))
		return resp, nil
	}
	resp.ClusterID = c.s.opts.ClusterID
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = c.authorizedOps(auth.ResourceCluster, "")
	}
	resp.ControllerID = c.s.cluster.Controller()
	for _, e := range c.brokers() {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = e.id, e.host, e.port, e.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	return resp, nil
}
