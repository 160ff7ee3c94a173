package kafka

// Authorization: every handler asks, per resource it touches, whether the
// connection's principal may perform the operation (Options.Authorizer,
// the one model of both protocols, docs/security.md "Authorization").
// The anonymous principal (user "", which the listener admits only where
// unauthenticated access is allowed: from loopback by default) and a
// server without an authorizer keep full access, as before ACLs existed.
//
// A refusal becomes Kafka's code in the field the response has for it:
// TOPIC_AUTHORIZATION_FAILED per topic or partition,
// GROUP_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED and
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED. Lists (Metadata for all topics,
// ListGroups, DescribeConfigs, DescribeLogDirs...) leave out what the
// principal may not describe, so a name it may not see never reaches it.

import (
	"net"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
)

// authorizing reports whether this connection's requests are checked at
// all: false for the anonymous principal and without an authorizer.
func (c *conn) authorizing() bool {
	return c.user != "" && c.s.opts.Authorizer != nil
}

// may reports whether the principal may perform op on rt/name, quietly:
// for filtering lists, where a refusal is not an event.
func (c *conn) may(rt auth.ResourceType, name string, op auth.Operation) bool {
	if !c.authorizing() {
		return true
	}
	return c.s.opts.Authorizer.Authorize(c.user, c.clientHost(), rt, name, op).Allowed
}

// allowed is may for a request the principal made explicitly: a refusal
// is logged, with the reason.
func (c *conn) allowed(rt auth.ResourceType, name string, op auth.Operation) bool {
	if !c.authorizing() {
		return true
	}
	d := c.s.opts.Authorizer.Authorize(c.user, c.clientHost(), rt, name, op)
	if !d.Allowed {
		c.log.Info("kafka request refused", "user", c.user, "operation", op.String(),
			"resource", rt.String()+":"+name, "reason", d.Reason)
	}
	return d.Allowed
}

func (c *conn) mayTopic(name string, op auth.Operation) bool {
	return c.may(auth.ResourceTopic, name, op)
}

func (c *conn) allowedTopic(name string, op auth.Operation) bool {
	return c.allowed(auth.ResourceTopic, name, op)
}

func (c *conn) allowedGroup(name string, op auth.Operation) bool {
	return c.allowed(auth.ResourceGroup, name, op)
}

func (c *conn) allowedCluster(op auth.Operation) bool {
	return c.allowed(auth.ResourceCluster, auth.ClusterResourceName, op)
}

func (c *conn) allowedTxnID(id string, op auth.Operation) bool {
	return c.allowed(auth.ResourceTransactionalID, id, op)
}

// mayWriteSomeTopic reports whether an ALLOW ACL lets the principal WRITE
// some topic: with IDEMPOTENT_WRITE on the cluster, what Kafka asks of an
// idempotent producer's InitProducerId. (The vhost permission's share of
// that rule, a non-empty write pattern, is in auth.Checker.VhostAllows.)
func (c *conn) mayWriteSomeTopic() bool {
	if !c.authorizing() {
		return true
	}
	for _, a := range c.s.opts.Authorizer.ACLs() {
		if a.ResourceType == auth.ResourceTopic && a.Permission == auth.PermAllow &&
			(a.Operation == auth.OpWrite || a.Operation == auth.OpAll) &&
			(a.Principal == auth.UserPrincipalPrefix+c.user || a.Principal == auth.UserPrincipalPrefix+auth.Wildcard) &&
			(a.Host == auth.Wildcard || a.Host == c.clientHost()) {
			return true
		}
	}
	return false
}

// groupMemberAllowed checks a consumer or share group heartbeat: READ on
// the group (GROUP_AUTHORIZATION_FAILED), DESCRIBE on every subscribed
// topic (TOPIC_AUTHORIZATION_FAILED), as Kafka; 0 when allowed.
func (c *conn) groupMemberAllowed(group string, subscribed []string) int16 {
	if !c.allowedGroup(group, auth.OpRead) {
		return errGroupAuth.Code
	}
	for _, t := range subscribed {
		if !c.allowedTopic(t, auth.OpDescribe) {
			return errTopicAuth.Code
		}
	}
	return 0
}

// shareReadAllowed checks ShareFetch and ShareAcknowledge: READ on the
// group, then on every topic named by id (an unknown id is left to the
// share coordinator); 0 when allowed. The whole request is refused, with
// the top-level code, if one topic is.
func (c *conn) shareReadAllowed(group string, topicIDs [][16]byte) int16 {
	if !c.authorizing() {
		return 0
	}
	if !c.allowedGroup(group, auth.OpRead) {
		return errGroupAuth.Code
	}
	for _, id := range topicIDs {
		if t, ok := c.s.broker.TopicByID(broker.TopicID(id)); ok && !c.allowedTopic(t.Name, auth.OpRead) {
			return errTopicAuth.Code
		}
	}
	return 0
}

// The operations each resource type has, for the authorized operations
// bit fields of KIP-430 (Metadata, DescribeCluster, DescribeGroups,
// ConsumerGroupDescribe, ShareGroupDescribe), as Kafka lists them.
var (
	topicOps   = []auth.Operation{auth.OpRead, auth.OpWrite, auth.OpCreate, auth.OpDelete, auth.OpAlter, auth.OpDescribe, auth.OpDescribeConfigs, auth.OpAlterConfigs}
	groupOps   = []auth.Operation{auth.OpRead, auth.OpDescribe, auth.OpDelete}
	clusterOps = []auth.Operation{auth.OpCreate, auth.OpAlter, auth.OpDescribe, auth.OpClusterAction, auth.OpDescribeConfigs, auth.OpAlterConfigs, auth.OpIdempotentWrite}
)

// authorizedOps is the KIP-430 bit field (bit n set: operation n allowed)
// of what the principal may do to a resource of type rt.
func (c *conn) authorizedOps(rt auth.ResourceType, name string) int32 {
	ops := topicOps
	switch rt {
	case auth.ResourceGroup:
		ops = groupOps
	case auth.ResourceCluster:
		ops, name = clusterOps, auth.ClusterResourceName
	}
	var bits int32
	for _, op := range ops {
		if c.may(rt, name, op) {
			bits |= 1 << op
		}
	}
	return bits
}

// clientHost is the client's IP address as ACL hosts name it.
func (c *conn) clientHost() string {
	addr := c.nc.RemoteAddr()
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// The codes of a refusal, by resource type.
var (
	errTopicAuth   = kerr.TopicAuthorizationFailed
	errGroupAuth   = kerr.GroupAuthorizationFailed
	errClusterAuth = kerr.ClusterAuthorizationFailed
	errTxnIDAuth   = kerr.TransactionalIDAuthorizationFailed
)
