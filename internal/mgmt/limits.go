package mgmt

// RabbitMQ's vhost and user limits (docs/management-api.md, "Limits"):
//
//	GET    /api/vhost-limits                 every vhost's limits
//	GET    /api/vhost-limits/{vhost}         one vhost's
//	PUT    /api/vhost-limits/{vhost}/{name}  {"value": N}; -1 is no limit
//	DELETE /api/vhost-limits/{vhost}/{name}
//
// and the same under /api/user-limits/{user} (max-connections,
// max-channels). Listed as RabbitMQ lists them: one object per vhost or
// user, {"vhost": "/", "value": {"max-queues": 10}}. Reads need the
// monitoring tag, changes administrator; user limits
// administrator throughout.

import (
	"errors"
	"net/http"
	"slices"

	"github.com/sluice-mq/sluice/internal/meta"
)

func (a *API) limitRoutes(h func(pattern string, need level, fn handlerFunc)) {
	h("GET /api/vhost-limits", levelMonitoring, a.listVhostLimits)
	h("GET /api/vhost-limits/{vhost}", levelManagement, a.listVhostLimits)
	h("PUT /api/vhost-limits/{name}/{key}", levelAdmin, a.putLimit(meta.LimitVhost))
	h("DELETE /api/vhost-limits/{name}/{key}", levelAdmin, a.deleteLimit(meta.LimitVhost))
	h("GET /api/user-limits", levelAdmin, a.listUserLimits)
	h("GET /api/user-limits/{user}", levelAdmin, a.listUserLimits)
	h("PUT /api/user-limits/{name}/{key}", levelAdmin, a.putLimit(meta.LimitUser))
	h("DELETE /api/user-limits/{name}/{key}", levelAdmin, a.deleteLimit(meta.LimitUser))
}

// listVhostLimits answers GET /api/vhost-limits[/{vhost}]: the vhosts
// the user may see that have limits.
func (a *API) listVhostLimits(r *http.Request, s *session) (any, error) {
	vhosts, err := s.vhostsOf(r)
	if err != nil {
		return nil, err
	}
	return limitsJSON(a.opts.Meta.Limits(meta.LimitVhost), "vhost", vhosts), nil
}

// listUserLimits answers GET /api/user-limits[/{user}].
func (a *API) listUserLimits(r *http.Request, s *session) (any, error) {
	var only []string
	if u := pathValue(r, "user"); u != "" {
		if _, ok := a.opts.Meta.User(u); !ok {
			return nil, notFound()
		}
		only = []string{u}
	}
	return limitsJSON(a.opts.Meta.Limits(meta.LimitUser), "user", only), nil
}

// limitsJSON groups limits by vhost or user, RabbitMQ's shape; only, when
// not nil, are the names to list.
func limitsJSON(limits []meta.Limit, field string, only []string) []map[string]any {
	out := []map[string]any{}
	byName := map[string]map[string]int64{}
	for _, l := range limits {
		if only != nil && !slices.Contains(only, l.Name) {
			continue
		}
		if byName[l.Name] == nil {
			byName[l.Name] = map[string]int64{}
			out = append(out, map[string]any{field: l.Name, "value": byName[l.Name]})
		}
		byName[l.Name][l.Key] = l.Value
	}
	return out
}

func (a *API) putLimit(kind string) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		name, key := pathValue(r, "name"), pathValue(r, "key")
		var b struct {
			Value *int64 `json:"value"`
		}
		if err := decodeBody(r, &b); err != nil {
			return nil, err
		}
		if b.Value == nil {
			return nil, badRequest("a limit needs a value")
		}
		err := a.opts.Meta.SetLimit(meta.Limit{Kind: kind, Name: name, Key: key, Value: *b.Value})
		switch {
		case errors.Is(err, meta.ErrUnknownVhost), errors.Is(err, meta.ErrUnknownUser):
			return nil, badRequest("%s '%s' does not exist", kind, name)
		case errors.Is(err, meta.ErrInvalidCommand):
			return nil, badRequest("unknown %s limit '%s'", kind, key)
		case err != nil:
			return nil, err
		}
		return noContent{}, nil
	}
}

func (a *API) deleteLimit(kind string) handlerFunc {
	return func(r *http.Request, s *session) (any, error) {
		if err := a.opts.Meta.ClearLimit(kind, pathValue(r, "name"), pathValue(r, "key")); err != nil {
			return nil, err
		}
		return noContent{}, nil
	}
}
