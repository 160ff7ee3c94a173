package mgmt

// RabbitMQ's topic permissions (docs/security.md), in the shapes of
// RabbitMQ's HTTP API:
//
//	GET    /api/topic-permissions                     every one
//	GET    /api/topic-permissions/{vhost}/{user}      the user's in the vhost (a list)
//	PUT    /api/topic-permissions/{vhost}/{user}      {"exchange", "write", "read"}
//	DELETE /api/topic-permissions/{vhost}/{user}      all of the user's in the vhost
//	DELETE /api/topic-permissions/{vhost}/{user}/{exchange}
//	GET    /api/users/{user}/topic-permissions, /api/vhosts/{vhost}/topic-permissions
//
// Administrators only, as permissions.

import (
	"net/http"

	"github.com/sluice-mq/sluice/internal/meta"
)

func topicPermissionJSON(p meta.TopicPermission) map[string]any {
	return map[string]any{"user": p.User, "vhost": p.Vhost, "exchange": p.Exchange, "write": p.Write, "read": p.Read}
}

func topicPermissionsJSON(ps []meta.TopicPermission) []map[string]any {
	out := []map[string]any{}
	for _, p := range ps {
		out = append(out, topicPermissionJSON(p))
	}
	return out
}

func (a *API) listTopicPermissions(r *http.Request, s *session) (any, error) {
	return topicPermissionsJSON(a.opts.Meta.TopicPermissions("", "")), nil
}

func (a *API) getTopicPermissions(r *http.Request, s *session) (any, error) {
	vh, user := pathValue(r, "vhost"), pathValue(r, "user")
	ps := a.opts.Meta.TopicPermissions(user, vh)
	if len(ps) == 0 {
		return nil, notFound()
	}
	return topicPermissionsJSON(ps), nil
}

func (a *API) userTopicPermissions(r *http.Request, s *session) (any, error) {
	u := pathValue(r, "user")
	if _, ok := a.opts.Meta.User(u); !ok {
		return nil, notFound()
	}
	return topicPermissionsJSON(a.opts.Meta.TopicPermissions(u, "")), nil
}

func (a *API) vhostTopicPermissions(r *http.Request, s *session) (any, error) {
	vh := pathValue(r, "vhost")
	if _, ok := a.opts.Meta.Vhost(vh); !ok {
		return nil, notFound()
	}
	var out []meta.TopicPermission
	for _, p := range a.opts.Meta.TopicPermissions("", "") {
		if p.Vhost == vh {
			out = append(out, p)
		}
	}
	return topicPermissionsJSON(out), nil
}

type topicPermissionBody struct {
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

func (a *API) putTopicPermission(r *http.Request, s *session) (any, error) {
	vh, user := pathValue(r, "vhost"), pathValue(r, "user")
	if _, ok := a.opts.Meta.Vhost(vh); !ok {
		return nil, badRequest("vhost '%s' does not exist", vh)
	}
	if _, ok := a.opts.Meta.User(user); !ok {
		return nil, badRequest("user '%s' does not exist", user)
	}
	var b topicPermissionBody
	if err := decodeBody(r, &b); err != nil {
		return nil, err
	}
	if b.Exchange == "" {
		return nil, badRequest("exchange is required")
	}
	existed := false
	for _, p := range a.opts.Meta.TopicPermissions(user, vh) {
		existed = existed || p.Exchange == b.Exchange
	}
	if err := a.opts.Meta.SetTopicPermission(meta.TopicPermission{User: user, Vhost: vh, Exchange: b.Exchange, Write: b.Write, Read: b.Read}); err != nil {
		return nil, err
	}
	if existed {
		return noContent{}, nil
	}
	return created{}, nil
}

func (a *API) deleteTopicPermissions(r *http.Request, s *session) (any, error) {
	vh, user, exchange := pathValue(r, "vhost"), pathValue(r, "user"), pathValue(r, "exchange")
	found := false
	for _, p := range a.opts.Meta.TopicPermissions(user, vh) {
		found = found || exchange == "" || p.Exchange == exchange
	}
	if !found {
		return nil, notFound()
	}
	if err := a.opts.Meta.ClearTopicPermission(user, vh, exchange); err != nil {
		return nil, err
	}
	return noContent{}, nil
}
