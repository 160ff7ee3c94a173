package kafka

import (
	"fmt"
	"slices"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterUserScramCredentials, v0: upserts and deletes users' SCRAM
// credentials in Sluice's one user store. An upsertion carries what the
// client derived (salt, iterations, salted password); the server keeps
// only StoredKey and ServerKey from it. Kafka has no user object apart
// from its credentials, so an upsertion for an unknown user creates the
// user, with no password hash (no AMQP, HTTP or Kafka PLAIN login), no
// tags and no permissions; deleting a user's last credential leaves the
// user. Errors per user, as Kafka: UNSUPPORTED_SASL_MECHANISM for an
// unknown mechanism, UNACCEPTABLE_CREDENTIAL for an empty name, an
// iteration count outside 4096..16384 or an empty salt or salted
// password, RESOURCE_NOT_FOUND to delete a credential that does not
// exist, DUPLICATE_RESOURCE when a user and mechanism appear twice,
// CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster (authz.go: an
// ACL, or the administrator tag), as in Kafka.

func handleAlterUserScramCredentials(c *conn, req *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	store := c.s.opts.Users
	// Each user's changes, in the order users first appear.
	var order []string
	errs := map[string]*kerr.Error{}
	msgs := map[string]string{}
	fail := func(user string, e *kerr.Error, format string, a ...any) {
		if errs[user] == nil {
			errs[user], msgs[user] = e, fmt.Sprintf(format, a...)
		}
	}
	type key struct {
		user string
		mech int8
	}
	seen := map[key]int{}
	note := func(user string, mech int8) {
		if !slices.Contains(order, user) {
			order = append(order, user)
		}
		seen[key{user, mech}]++
	}
	for _, d := range req.Deletions {
		note(d.Name, d.Mechanism)
	}
	for _, u := range req.Upsertions {
		note(u.Name, u.Mechanism)
	}
	for k, n := range seen {
		if n > 1 {
			fail(k.user, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		}
	}
	if store == nil {
		for _, u := range order {
			fail(u, kerr.UnsupportedVersion, "this listener has no user store")
		}
	}
	if !c.allowedCluster(auth.OpAlter) {
		for _, u := range order {
			fail(u, errClusterAuth, "ALTER on the cluster is needed to alter SCRAM credentials")
		}
	}
	for _, d := range req.Deletions {
		switch {
		case d.Name == "":
			fail(d.Name, kerr.UnacceptableCredential, "Username must not be empty")
		case auth.ScramMechanismOfType(d.Mechanism) == nil:
			fail(d.Name, kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		}
	}
	for _, u := range req.Upsertions {
		switch {
		case u.Name == "":
			fail(u.Name, kerr.UnacceptableCredential, "Username must not be empty")
		case auth.ScramMechanismOfType(u.Mechanism) == nil:
			fail(u.Name, kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		case u.Iterations < auth.ScramMinIterations:
			fail(u.Name, kerr.UnacceptableCredential, "Too few iterations")
		case u.Iterations > auth.ScramMaxIterations:
			fail(u.Name, kerr.UnacceptableCredential, "Too many iterations")
		case len(u.Salt) == 0:
			fail(u.Name, kerr.UnacceptableCredential, "Salt must not be empty")
		case len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential, "Salted password must not be empty")
		}
	}
	for _, name := range order {
		if errs[name] == nil {
			if e, msg := c.alterUserScram(name, req); e != nil {
				fail(name, e, "%s", msg)
			}
		}
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = name
		if e := errs[name]; e != nil {
			r.ErrorCode = e.Code
			r.ErrorMessage = kmsg.StringPtr(msgs[name])
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// alterUserScram applies the request's changes to one user.
func (c *conn) alterUserScram(name string, req *kmsg.AlterUserSCRAMCredentialsRequest) (*kerr.Error, string) {
	store := c.s.opts.Users
	u, exists := store.User(name)
	if !exists {
		u = broker.User{Name: name}
	}
	for _, d := range req.Deletions {
		if d.Name != name {
			continue
		}
		m := auth.ScramMechanismOfType(d.Mechanism)
		i := slices.IndexFunc(u.Scram, func(sc broker.ScramCredential) bool { return sc.Mechanism == m.Name })
		if i < 0 {
			return kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"
		}
		u.Scram = slices.Delete(slices.Clone(u.Scram), i, i+1)
	}
	upserted := false
	for _, up := range req.Upsertions {
		if up.Name != name {
			continue
		}
		m := auth.ScramMechanismOfType(up.Mechanism)
		cred := broker.ScramCredential(auth.ScramCredentialFromSalted(m, up.SaltedPassword, up.Salt, int(up.Iterations)))
		u.Scram = slices.DeleteFunc(slices.Clone(u.Scram), func(sc broker.ScramCredential) bool { return sc.Mechanism == m.Name })
		u.Scram = append(u.Scram, cred)
		upserted = true
	}
	if !exists && !upserted {
		return kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"
	}
	if err := store.PutUser(u); err != nil {
		return kerr.UnknownServerError, err.Error()
	}
	if !exists {
		c.log.Info("kafka user created by AlterUserScramCredentials", "user", name)
	}
	return nil, ""
}
