package kafka

// DeleteAcls, versions 0-3.
//
// Each filter (as DescribeAcls takes it) deletes the stored ACLs it
// selects and lists them; the deletions of all filters are one metadata
// command, durable before the answer. A filter with UNKNOWN values is
// INVALID_REQUEST and deletes nothing. Needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED for every filter). v0 has no pattern
// type: LITERAL. Without an authorizer, every filter is SECURITY_DISABLED.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteACLs(c *conn, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
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
		return failAll(errClusterAuth, "ALTER on the cluster is needed to delete ACLs")
	}
	var filters []auth.ACLFilter
	var at []int
	for i, rf := range req.Filters {
		f := auth.ACLFilter{
			ResourceType: auth.ResourceType(rf.ResourceType), ResourceName: rf.ResourceName,
			PatternType: auth.PatternType(rf.ResourcePatternType),
			Principal:   rf.Principal, Host: rf.Host,
			Operation: auth.Operation(rf.Operation), Permission: auth.PermissionType(rf.PermissionType),
		}
		if req.Version == 0 {
			f.PatternType = auth.PatternLiteral
		}
		if err := f.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = codeAndMessage(reqErr(kerr.InvalidRequest, "%v", err))
			continue
		}
		filters = append(filters, f)
		at = append(at, i)
	}
	if len(filters) == 0 {
		return resp, nil
	}
	deleted, err := c.s.opts.Authorizer.DeleteACLs(filters)
	if err != nil {
		code, msg := codeAndMessage(err)
		for _, i := range at {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
		}
		return resp, nil
	}
	n := 0
	for j, i := range at {
		for _, a := range deleted[j] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType = kmsg.ACLResourceType(a.ResourceType)
			m.ResourceName = a.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			m.Principal, m.Host = a.Principal, a.Host
			m.Operation = kmsg.ACLOperation(a.Operation)
			m.PermissionType = kmsg.ACLPermissionType(a.Permission)
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
			n++
		}
	}
	if n > 0 {
		c.log.Info("kafka ACLs deleted", "user", c.user, "count", n)
	}
	return resp, nil
}
