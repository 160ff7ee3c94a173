package mgmt

import (
	"net"
	"net/http"

	"github.com/sluice-mq/sluice/internal/meta"
)

// /api/nodes lists the nodes in RabbitMQ's shape (name, type, running and
// this node's resource fields) with Sluice's own beside them: node_id
// (the Kafka broker id), rack, addresses (by protocol: cluster, kafka,
// kafka_tls, amqp, amqps, http, https; those that are off are left out)
// and role; and for operators: state ("running" or "unreachable"),
// controller (whether Kafka clients are told it is the controller: the
// metadata leader; a single node is its own), and leaders and replicas,
// the partitions it leads and holds (cluster_partitions.go).
//
// A single node lists itself: node_id is its Kafka broker id, role
// "single", addresses its listeners'. In a cluster the list is the
// registry of nodes (meta.Node) with what the cluster knows of each
// (Options.ClusterNodes); only this node's entry has the resource fields,
// which no node knows of another.

// ClusterNode is a node of a cluster as /api/nodes shows it.
type ClusterNode struct {
	// Node is its entry in the registry of nodes.
	Node meta.Node
	// Name is its RabbitMQ-style name; "" makes it sluice@ and the host
	// of its cluster address. This node's is Options.NodeName.
	Name string
	// Running: this node reaches it (or it is this node).
	Running bool
	// Role is its part in the metadata group: "leader", "follower",
	// "learner" (not yet a voter) or "unknown".
	Role string
	// Self marks this node.
	Self bool
}

// listenerAddressKeys names a listener's protocol (Listener.Protocol) in
// a node's addresses.
var listenerAddressKeys = map[string]string{
	"amqp": "amqp", "amqp/ssl": "amqps", "kafka": "kafka", "kafka/ssl": "kafka_tls", "http": "http", "https": "https",
}

// nodes returns /api/nodes.
func (a *API) nodes() []map[string]any {
	if a.opts.ClusterNodes == nil {
		n := a.nodeJSON()
		addrs := map[string]string{}
		for _, l := range a.opts.Listeners {
			if k, ok := listenerAddressKeys[l.Protocol]; ok {
				addrs[k] = l.Addr.String()
			}
		}
		n["node_id"], n["rack"], n["addresses"], n["role"] = a.opts.BrokerID, a.opts.Rack, addrs, "single"
		parts := a.singleNodePartitions()
		n["state"], n["controller"], n["leaders"], n["replicas"] = "running", true, parts, parts
		return []map[string]any{n}
	}
	cns := a.opts.ClusterNodes()
	leaders, replicas := partitionCounts(a.clusterPartitionStates())
	out := make([]map[string]any, 0, len(cns))
	for _, cn := range cns {
		var n map[string]any
		if cn.Self {
			n = a.nodeJSON()
		} else {
			name := cn.Name
			if name == "" {
				host, _, _ := net.SplitHostPort(cn.Node.ClusterAddr)
				name = "sluice@" + host
			}
			n = map[string]any{"name": name, "type": "disc", "running": cn.Running, "being_drained": false}
		}
		n["node_id"], n["rack"], n["addresses"], n["role"] = cn.Node.ID, cn.Node.Rack, nodeAddresses(cn.Node), cn.Role
		n["state"] = "unreachable"
		if cn.Running {
			n["state"] = "running"
		}
		// The controller Kafka clients are told of is the metadata
		// group's leader.
		n["controller"] = cn.Role == "leader"
		n["leaders"], n["replicas"] = leaders[int32(cn.Node.ID)], replicas[int32(cn.Node.ID)]
		out = append(out, n)
	}
	return out
}

// nodeNameOf is the name /api/nodes gives node id ("" if it is not
// registered).
func (a *API) nodeNameOf(id uint64) string {
	if a.opts.ClusterNodes == nil {
		return ""
	}
	for _, cn := range a.opts.ClusterNodes() {
		if cn.Node.ID != id {
			continue
		}
		if cn.Self {
			return a.opts.NodeName
		}
		if cn.Name != "" {
			return cn.Name
		}
		host, _, _ := net.SplitHostPort(cn.Node.ClusterAddr)
		return "sluice@" + host
	}
	return ""
}

// nodeAddresses is a registered node's addresses by protocol.
func nodeAddresses(n meta.Node) map[string]string {
	out := map[string]string{}
	for k, v := range map[string]string{
		"cluster": n.ClusterAddr, "kafka": n.KafkaAddr, "kafka_tls": n.KafkaTLSAddr,
		"amqp": n.AMQPAddr, "amqps": n.AMQPSAddr, "http": n.HTTPAddr, "https": n.HTTPSAddr,
	} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

func (a *API) listNodes(r *http.Request, s *session) (any, error) {
	return a.nodes(), nil
}

func (a *API) getNode(r *http.Request, s *session) (any, error) {
	for _, n := range a.nodes() {
		if n["name"] != pathValue(r, "node") {
			continue
		}
		if queryBool(r, "memory") && n["name"] == a.opts.NodeName {
			n["memory"] = a.memoryBreakdown()
		}
		return n, nil
	}
	return nil, notFound()
}
