package kafka

// DescribeAcls, versions 0-3.
//
// Answers the stored ACLs the filter selects (auth.ACLFilter: ANY matches
// either pattern type, MATCH the ACLs that would apply to the named
// resource), grouped by resource. Users' vhost permissions, the other half
// of the authorization model, are not shown here: they are RabbitMQ
// permissions, listed by the management API (/api/permissions). Needs
// DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED); a filter with
// UNKNOWN values is INVALID_REQUEST. At v0, which has no pattern type, the
// filter is LITERAL, as in Kafka. Without an authorizer (a server built
// without one) the answer is SECURITY_DISABLED.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeACLs(c *conn, req *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(code *kerr.Error, msg string) (kmsg.Response, error) {
		resp.ErrorCode, resp.ErrorMessage = code.Code, &msg
		return resp, nil
	}
	if c.s.opts.Authorizer == nil {
		return fail(kerr.SecurityDisabled, "no authorizer is configured")
	}
	if !c.allowedCluster(auth.OpDescribe) {
		return fail(errClusterAuth, "DESCRIBE on the cluster is needed to describe ACLs")
	}
	pt := auth.PatternType(req.ResourcePatternType)
	if req.Version == 0 {
		pt = auth.PatternLiteral
	}
	f := auth.ACLFilter{
		ResourceType: auth.ResourceType(req.ResourceType), ResourceName: req.ResourceName, PatternType: pt,
		Principal: req.Principal, Host: req.Host,
		Operation: auth.Operation(req.Operation), Permission: auth.PermissionType(req.PermissionType),
	}
	if err := f.Validate(); err != nil {
		return fail(kerr.InvalidRequest, err.Error())
	}
	type resKey struct {
		rt   auth.ResourceType
		name string
		pt   auth.PatternType
	}
	at := map[resKey]int{}
	for _, a := range c.s.opts.Authorizer.ACLs() { // sorted by resource first
		if !f.Matches(a) {
			continue
		}
		k := resKey{a.ResourceType, a.ResourceName, a.PatternType}
		i, ok := at[k]
		if !ok {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType = kmsg.ACLResourceType(a.ResourceType)
			r.ResourceName = a.ResourceName
			r.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			resp.Resources = append(resp.Resources, r)
			i = len(resp.Resources) - 1
			at[k] = i
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host = a.Principal, a.Host
		e.Operation = kmsg.ACLOperation(a.Operation)
		e.PermissionType = kmsg.ACLPermissionType(a.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, e)
	}
	return resp, nil
}
