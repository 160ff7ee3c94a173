package mgmt

import (
	"net/http"
	"slices"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/meta"
)

// Vhosts, users and permissions.

func (a *API) vhostJSON(v meta.Vhost) map[string]any {
	var ready, unacked int64
	if qs, err := a.opts.Router.QueueStatuses(v.Name); err == nil {
		for _, q := range qs {
			ready += q.Ready
			unacked += q.Unacked
		}
	}
	tags := v.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"name": v.Name, "description": v.Description, "tags": tags, "tracing": false,
		"messages": ready + unacked, "messages_ready": ready, "messages_unacknowledged": unacked,
		"metadata": map[string]any{"description": v.Description, "tags": tags},
	}
}

func (a *API) listVhosts(r *http.Request, s *session) (any, error) {
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, v := range a.opts.Meta.Vhosts() {
		if s.canSeeVhost(v.Name) {
			out = append(out, a.withVhostStats(a.vhostJSON(v), v.Name, w))
		}
	}
	return out, nil
}

func (a *API) getVhost(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	w, err := a.windows(r)
	if err != nil {
		return nil, err
	}
	v, _ := a.opts.Meta.Vhost(vh)
	return a.withVhostStats(a.vhostJSON(v), vh, w), nil
}

type vhostBody struct {
	Description string  `json:"description"`
	Tags        tagList `json:"tags"`
}

func (a *API) putVhost(r *http.Request, s *session) (any, error) {
	name := pathValue(r, "vhost")
	if name == "" {
		return nil, badRequest("vhost name is required")
	}
	var b vhostBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	_, existed := a.opts.Meta.Vhost(name)
	if err := a.opts.Router.AddVhost(name); err != nil {
		return nil, err
	}
	if b.Description != "" || len(b.Tags) > 0 {
		if err := a.opts.Meta.PutVhost(meta.Vhost{Name: name, Description: b.Description, Tags: b.Tags}); err != nil {
			return nil, err
		}
	}
	if existed {
		return noContent{}, nil
	}
	return created{}, nil
}

func (a *API) deleteVhost(r *http.Request, s *session) (any, error) {
	name := pathValue(r, "vhost")
	if _, ok := a.opts.Meta.Vhost(name); !ok {
		return nil, notFound()
	}
	if err := a.opts.Router.DeleteVhost(name); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func userJSON(u meta.User) map[string]any {
	tags := u.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"name": u.Name, "password_hash": u.PasswordHash,
		"hashing_algorithm": "rabbit_password_hashing_sha256", "tags": tags, "limits": map[string]any{},
	}
}

func (a *API) listUsers(r *http.Request, s *session) (any, error) {
	out := []map[string]any{}
	for _, u := range a.opts.Meta.Users() {
		out = append(out, userJSON(u))
	}
	return out, nil
}

func (a *API) getUser(r *http.Request, s *session) (any, error) {
	u, ok := a.opts.Meta.User(pathValue(r, "user"))
	if !ok {
		return nil, notFound()
	}
	return userJSON(u), nil
}

type userBody struct {
	Password         *string `json:"password"`
	PasswordHash     *string `json:"password_hash"`
	HashingAlgorithm string  `json:"hashing_algorithm"`
	Tags             tagList `json:"tags"`
}

func (a *API) putUser(r *http.Request, s *session) (any, error) {
	name := pathValue(r, "user")
	var b userBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	old, existed := a.opts.Meta.User(name)
	u := meta.User{Name: name, Tags: b.Tags, PasswordHash: old.PasswordHash, Scram: old.Scram}
	switch {
	case b.Password != nil:
		// The hash and SCRAM credentials, so the user logs in over
		// AMQP, HTTP and Kafka SASL alike.
		nu, err := broker.UserWithPassword(name, *b.Password, b.Tags)
		if err != nil {
			return nil, err
		}
		u = nu
	case b.PasswordHash != nil:
		if b.HashingAlgorithm != "" && b.HashingAlgorithm != "rabbit_password_hashing_sha256" {
			return nil, badRequest("unsupported hashing_algorithm '%s' (only rabbit_password_hashing_sha256)", b.HashingAlgorithm)
		}
		// A hash cannot yield SCRAM credentials: old ones would be of
		// another password, so they go; the user has Kafka PLAIN only.
		u.PasswordHash, u.Scram = *b.PasswordHash, nil
	case !existed:
		return nil, badRequest("Must specify either password or password_hash")
	}
	if err := a.opts.Meta.PutUser(u); err != nil {
		return nil, err
	}
	if existed {
		return noContent{}, nil
	}
	return created{}, nil
}

func (a *API) deleteUser(r *http.Request, s *session) (any, error) {
	name := pathValue(r, "user")
	if _, ok := a.opts.Meta.User(name); !ok {
		return nil, notFound()
	}
	if err := a.opts.Meta.DeleteUser(name); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func permissionJSON(p meta.Permission) map[string]any {
	return map[string]any{"user": p.User, "vhost": p.Vhost, "configure": p.Configure, "write": p.Write, "read": p.Read}
}

func (a *API) listPermissions(keep func(meta.Permission) bool) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		out := []map[string]any{}
		for _, p := range a.opts.Meta.Permissions() {
			if keep == nil || keep(p) {
				out = append(out, permissionJSON(p))
			}
		}
		return out, nil
	}
}

func (a *API) vhostPermissions(r *http.Request, s *session) (any, error) {
	vh := pathValue(r, "vhost")
	if _, ok := a.opts.Meta.Vhost(vh); !ok {
		return nil, notFound()
	}
	return a.listPermissions(func(p meta.Permission) bool { return p.Vhost == vh })(r, s)
}

func (a *API) userPermissions(r *http.Request, s *session) (any, error) {
	u := pathValue(r, "user")
	if _, ok := a.opts.Meta.User(u); !ok {
		return nil, notFound()
	}
	return a.listPermissions(func(p meta.Permission) bool { return p.User == u })(r, s)
}

func (a *API) getPermission(r *http.Request, s *session) (any, error) {
	p, ok := a.opts.Meta.Permission(pathValue(r, "user"), pathValue(r, "vhost"))
	if !ok {
		return nil, notFound()
	}
	return permissionJSON(p), nil
}

type permissionBody struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

func (a *API) putPermission(r *http.Request, s *session) (any, error) {
	vh, user := pathValue(r, "vhost"), pathValue(r, "user")
	if _, ok := a.opts.Meta.Vhost(vh); !ok {
		return nil, badRequest("vhost '%s' does not exist", vh)
	}
	if _, ok := a.opts.Meta.User(user); !ok {
		return nil, badRequest("user '%s' does not exist", user)
	}
	var b permissionBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	_, existed := a.opts.Meta.Permission(user, vh)
	if err := a.opts.Meta.SetPermission(meta.Permission{User: user, Vhost: vh, Configure: b.Configure, Write: b.Write, Read: b.Read}); err != nil {
		return nil, err
	}
	if existed {
		return noContent{}, nil
	}
	return created{}, nil
}

func (a *API) deletePermission(r *http.Request, s *session) (any, error) {
	vh, user := pathValue(r, "vhost"), pathValue(r, "user")
	if _, ok := a.opts.Meta.Permission(user, vh); !ok {
		return nil, notFound()
	}
	if err := a.opts.Meta.ClearPermission(user, vh); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (a *API) whoami(r *http.Request, s *session) (any, error) {
	tags := slices.Clone(s.user.Tags)
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{"name": s.user.Name, "tags": tags}, nil
}
