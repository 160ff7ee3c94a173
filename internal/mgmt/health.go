package mgmt

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/message"
)

// The health endpoints RabbitMQ lists besides those in overview.go: the
// aliveness test, the older /api/healthchecks/node, the checks a single
// node passes by construction. (The vhost limits are in limits.go.)

// alivenessQueue is the queue the aliveness test declares, as RabbitMQ's.
const alivenessQueue = "aliveness-test"

// alivenessTest declares the aliveness-test queue in the vhost, publishes
// a message to it through the default exchange, waits for it to be
// durable and takes one message back, as RabbitMQ's
// /api/aliveness-test/{vhost} does: 200 {"status":"ok"} when all of that
// worked, 503 {"status":"failed","reason":...} when a step failed.
func (a *API) alivenessTest(r *http.Request, s *session) (any, error) {
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	for _, acc := range []auth.Access{auth.AccessConfigure, auth.AccessWrite, auth.AccessRead} {
		if err := s.permitted(vh, acc, "queue", alivenessQueue); err != nil {
			return nil, err
		}
	}
	if _, err := a.opts.Router.DeclareQueue(vh, broker.QueueDecl{Name: alivenessQueue}); err != nil {
		return healthFailed("declaring the aliveness-test queue: "+err.Error(), nil), nil
	}
	rt, err := a.opts.Router.Publish(vh, &message.Message{RoutingKey: alivenessQueue, Body: []byte("test_message")})
	if err == nil && rt.Queues == 0 {
		return healthFailed("the test message was not routed to the aliveness-test queue", nil), nil
	}
	if err == nil {
		err = rt.Wait()
	}
	if err != nil {
		return healthFailed("publishing the test message: "+err.Error(), nil), nil
	}
	q, err := a.opts.Router.Queue(vh, alivenessQueue, "")
	if err != nil {
		return healthFailed("opening the aliveness-test queue: "+err.Error(), nil), nil
	}
	if _, ok := q.Get(true); !ok {
		return healthFailed("the test message could not be got back", nil), nil
	}
	return healthOK(), nil
}

// healthchecksNode is RabbitMQ's older /api/healthchecks/node[/{node}]:
// {"status":"ok"} while no alarm is raised and no log refuses writes,
// else {"status":"failed","reason":...} (with 200, as RabbitMQ answers
// it).
func (a *API) healthchecksNode(r *http.Request, s *session) (any, error) {
	if n := pathValue(r, "node"); n != "" && n != a.opts.NodeName {
		return nil, notFound()
	}
	res := a.checkAlarms(r)
	if res.status == http.StatusOK {
		return map[string]any{"status": "ok"}, nil
	}
	return map[string]any{"status": "failed", "reason": res.body["reason"]}, nil
}

// checkCertificateExpiration passes: Sluice has no TLS listener, so no
// certificate expires. It still checks its arguments as RabbitMQ does.
func (a *API) checkCertificateExpiration(r *http.Request) healthResult {
	if n, err := strconv.Atoi(pathValue(r, "within")); err != nil || n < 0 {
		return healthResult{http.StatusBadRequest, map[string]any{"error": "bad_request", "reason": "within must be a non-negative integer"}}
	}
	switch pathValue(r, "unit") {
	case "days", "weeks", "months", "years":
	default:
		return healthResult{http.StatusBadRequest, map[string]any{"error": "bad_request", "reason": "unit must be one of days, weeks, months, years"}}
	}
	return healthOK()
}

// checkInService passes while the node runs: Sluice has no maintenance
// mode to drain it into.
func (a *API) checkInService(r *http.Request) healthResult { return healthOK() }

// ConnectionCap is one front end's open connections and its listeners'
// cap (0: none), for below-node-connection-limit.
type ConnectionCap struct {
	Protocol string // "amqp", "kafka"
	Setting  string // the cap's setting, for the reason: "amqp_max_connections"
	Open     int
	Max      int
}

// checkReadyToServe is is-in-service and below-node-connection-limit
// together: 200 while every front end is below its connection cap
// (amqp_max_connections, kafka_max_connections; none set, it passes), 503
// naming the caps reached otherwise, as RabbitMQ compares its AMQP
// connections against the node's limit. Sluice counts the Kafka
// listener too: at its cap new Kafka clients wait unserved.
func (a *API) checkReadyToServe(r *http.Request) healthResult {
	if a.opts.ConnectionCaps == nil {
		return healthOK()
	}
	var reached []string
	for _, c := range a.opts.ConnectionCaps() {
		if c.Max > 0 && c.Open >= c.Max {
			reached = append(reached, fmt.Sprintf("%d %s connections, at %s (%d)", c.Open, c.Protocol, c.Setting, c.Max))
		}
	}
	if len(reached) > 0 {
		return healthFailed("node has reached its connection limit: "+strings.Join(reached, "; "), nil)
	}
	return healthOK()
}
