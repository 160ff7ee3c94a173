package mgmt

// Kafka ACLs (Sluice's own endpoints; RabbitMQ has none): the same stored
// rules Kafka's CreateAcls, DescribeAcls and DeleteAcls manage, in JSON
// with Kafka's names for the enums (docs/management-api.md):
//
//	GET    /api/acls   every ACL, sorted
//	POST   /api/acls   create one ACL (201), or a JSON array of them
//	DELETE /api/acls   delete the one ACL given in the body (204; 404 if absent)
//
// Administrators only: ACLs are cluster-wide, not in a vhost.

import (
	"encoding/json"
	"net/http"

	"github.com/sluice-mq/sluice/internal/auth"
)

// aclJSON is an ACL as the API shows and takes it.
type aclJSON struct {
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

func toACLJSON(a auth.ACL) aclJSON {
	return aclJSON{
		ResourceType: a.ResourceType.String(), ResourceName: a.ResourceName, PatternType: a.PatternType.String(),
		Principal: a.Principal, Host: a.Host, Operation: a.Operation.String(), Permission: a.Permission.String(),
	}
}

// acl reads j: the pattern type defaults to LITERAL, the host to "*", the
// permission to ALLOW; names are case-insensitive.
func (j aclJSON) acl() (auth.ACL, error) {
	if j.PatternType == "" {
		j.PatternType = "LITERAL"
	}
	if j.Host == "" {
		j.Host = auth.Wildcard
	}
	if j.Permission == "" {
		j.Permission = "ALLOW"
	}
	if j.ResourceType == "cluster" || j.ResourceType == "CLUSTER" {
		if j.ResourceName == "" {
			j.ResourceName = auth.ClusterResourceName
		}
	}
	rt, ok1 := auth.ParseResourceType(j.ResourceType)
	pt, ok2 := auth.ParsePatternType(j.PatternType)
	op, ok3 := auth.ParseOperation(j.Operation)
	perm, ok4 := auth.ParsePermissionType(j.Permission)
	switch {
	case !ok1:
		return auth.ACL{}, badRequest("unknown resource_type %q", j.ResourceType)
	case !ok2:
		return auth.ACL{}, badRequest("unknown pattern_type %q", j.PatternType)
	case !ok3:
		return auth.ACL{}, badRequest("unknown operation %q", j.Operation)
	case !ok4:
		return auth.ACL{}, badRequest("unknown permission %q", j.Permission)
	}
	a := auth.ACL{ResourceType: rt, ResourceName: j.ResourceName, PatternType: pt, Principal: j.Principal,
		Host: j.Host, Operation: op, Permission: perm}
	if err := a.Validate(); err != nil {
		return auth.ACL{}, badRequest("%v", err)
	}
	return a, nil
}

func (a *API) listACLs(r *http.Request, s *session) (any, error) {
	out := []aclJSON{}
	for _, acl := range a.opts.Meta.ACLs() {
		out = append(out, toACLJSON(acl))
	}
	return out, nil
}

func (a *API) createACLs(r *http.Request, s *session) (any, error) {
	var raw json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return nil, err
	}
	var list []aclJSON
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, badRequest("malformed JSON body: %v", err)
		}
	} else {
		var one aclJSON
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, badRequest("malformed JSON body: %v", err)
		}
		list = append(list, one)
	}
	acls := make([]auth.ACL, 0, len(list))
	for _, j := range list {
		acl, err := j.acl()
		if err != nil {
			return nil, err
		}
		acls = append(acls, acl)
	}
	if err := a.opts.Meta.CreateACLs(acls); err != nil {
		return nil, err
	}
	a.opts.Logger.Info("kafka ACLs created", "user", s.user.Name, "count", len(acls))
	return created{}, nil
}

func (a *API) deleteACL(r *http.Request, s *session) (any, error) {
	var j aclJSON
	if err := decodeBody(r, &j); err != nil {
		return nil, err
	}
	acl, err := j.acl()
	if err != nil {
		return nil, err
	}
	exact := auth.ACLFilter{
		ResourceType: acl.ResourceType, ResourceName: &acl.ResourceName, PatternType: acl.PatternType,
		Principal: &acl.Principal, Host: &acl.Host, Operation: acl.Operation, Permission: acl.Permission,
	}
	deleted, err := a.opts.Meta.DeleteACLs([]auth.ACLFilter{exact})
	if err != nil {
		return nil, err
	}
	if len(deleted[0]) == 0 {
		return nil, notFound()
	}
	a.opts.Logger.Info("kafka ACL deleted", "user", s.user.Name, "acl", acl.String())
	return noContent{}, nil
}
