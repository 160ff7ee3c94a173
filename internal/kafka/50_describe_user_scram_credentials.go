package kafka

import (
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeUserScramCredentials, v0: the SCRAM mechanisms and iteration
// counts of the named users (every user with a credential when none is
// named), never salts or keys. The users are Sluice's one user store
// (sasl.go): a user created by `sluice user add` or the management API
// has both mechanisms. A named user without credentials is
// RESOURCE_NOT_FOUND, a name given twice DUPLICATE_RESOURCE, as in Kafka.
// Needs DESCRIBE on the cluster (authz.go: an ACL, or the administrator or
// monitoring tag), as in Kafka; others get CLUSTER_AUTHORIZATION_FAILED.

func handleDescribeUserScramCredentials(c *conn, req *kmsg.DescribeUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	store := c.s.opts.Users
	if store == nil {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp, nil
	}
	if !c.allowedCluster(auth.OpDescribe) {
		resp.ErrorCode = errClusterAuth.Code
		resp.ErrorMessage = kmsg.StringPtr("DESCRIBE on the cluster is needed to describe SCRAM credentials")
		return resp, nil
	}
	describe := func(u broker.User) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = u.Name
		for _, sc := range u.Scram {
			m := auth.ScramMechanismNamed(sc.Mechanism)
			if m == nil {
				continue
			}
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism, ci.Iterations = m.KafkaType, int32(sc.Iterations)
			r.CredentialInfos = append(r.CredentialInfos, ci)
		}
		return r
	}
	if req.Users == nil {
		for _, u := range store.Users() {
			if len(u.Scram) > 0 {
				resp.Results = append(resp.Results, describe(u))
			}
		}
		return resp, nil
	}
	count := map[string]int{}
	for _, u := range req.Users {
		count[u.Name]++
	}
	var seen []string
	for _, ru := range req.Users {
		if slices.Contains(seen, ru.Name) {
			continue
		}
		seen = append(seen, ru.Name)
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = ru.Name
		u, ok := store.User(ru.Name)
		switch {
		case count[ru.Name] > 1:
			r.ErrorCode = kerr.DuplicateResource.Code
			r.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + ru.Name)
		case !ok || len(u.Scram) == 0:
			r.ErrorCode = kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + ru.Name)
		default:
			r = describe(u)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
