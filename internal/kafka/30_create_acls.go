package kafka

// CreateAcls, versions 0-3.
//
// Each creation is answered on its own: a malformed one (a filter-only or
// unknown value, DELEGATION_TOKEN or USER resources, which Sluice does not
// support, a principal not "User:name", the cluster under another name
// than kafka-cluster) is INVALID_REQUEST with the reason, and the valid
// ones are stored together in one metadata command (durable before the
// answer). Creating an ACL that exists succeeds and keeps one copy. Needs
// ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for every creation).
// v0 has no pattern type: LITERAL. Without an authorizer, every creation
// is SECURITY_DISABLED.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreateACLs(c *conn, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
	}
	failAll := func(code *kerr.Error, msg string) (kmsg.Response, error) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code.Code, &msg
		}
		return resp, nil
	}
	if c.s.opts.Authorizer == nil {
		return failAll(kerr.SecurityDisabled, "no authorizer is configured")
	}
	if !c.allowedCluster(auth.OpAlter) {
		return failAll(errClusterAuth, "ALTER on the cluster is needed to create ACLs")
	}
	var acls []auth.ACL
	var at []int
	for i, cr := range req.Creations {
		a := auth.ACL{
			ResourceType: auth.ResourceType(cr.ResourceType), ResourceName: cr.ResourceName,
			PatternType: auth.PatternType(cr.ResourcePatternType),
			Principal:   cr.Principal, Host: cr.Host,
			Operation: auth.Operation(cr.Operation), Permission: auth.PermissionType(cr.PermissionType),
		}
		if req.Version == 0 {
			a.PatternType = auth.PatternLiteral
		}
		if err := a.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = codeAndMessage(reqErr(kerr.InvalidRequest, "%v", err))
			continue
		}
		acls = append(acls, a)
		at = append(at, i)
	}
	if len(acls) == 0 {
		return resp, nil
	}
	if err := c.s.opts.Authorizer.CreateACLs(acls); err != nil {
		code, msg := codeAndMessage(err)
		for _, i := range at {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
		}
		return resp, nil
	}
	c.log.Info("kafka ACLs created", "user", c.user, "count", len(acls))
	return resp, nil
}
