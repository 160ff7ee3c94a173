package kafka

// DescribeCluster, versions 0-1.
//
// One broker, NodeID, which is also the controller. v1 asks for broker
// endpoints (EndpointType 1); asking this broker for controller endpoints
// (2) is UNSUPPORTED_ENDPOINT_TYPE, as in Kafka. Cluster authorized
// operations are reported as not requested (-2147483648): Sluice has no
// ACLs.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(c *conn, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode, resp.ErrorMessage = codeAndMessage(reqErr(kerr.UnsupportedEndpointType, "endpoint type %d is not served by a broker", req.EndpointType))
		return resp, nil
	}
	resp.ClusterID = c.s.opts.ClusterID
	resp.ControllerID = NodeID
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID = NodeID
	b.Host, b.Port = c.advertised()
	resp.Brokers = append(resp.Brokers, b)
	return resp, nil
}
