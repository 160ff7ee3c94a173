package mgmt

import (
	"net/http"

	"github.com/sluice-mq/sluice/internal/mgmt/console"
)

// routes is the one table of endpoints. Paths follow RabbitMQ's HTTP API;
// a vhost in a path is URL-encoded ("/" is "%2F"). Query parameters for
// pagination, sorting and columns are accepted and ignored: lists are
// always complete and sorted by name. Every path is served with or
// without a trailing slash (ServeHTTP trims it).
func (a *API) routes() {
	// Probes for orchestrators: no authentication.
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ready\n")) })
	// /metrics is mounted by the server with Handle.

	h := a.handle
	h("GET /api/overview", levelManagement, a.overview)
	h("GET /api/whoami", levelManagement, a.whoami)
	h("GET /api/nodes", levelMonitoring, a.listNodes)
	h("GET /api/nodes/{node}", levelMonitoring, a.getNode)
	a.membershipRoutes()   // membership.go
	a.quorumMemberRoutes() // quorum_members.go
	h("GET /api/cluster/partitions", levelMonitoring, a.clusterPartitions)

	h("GET /api/vhosts", levelManagement, a.listVhosts)
	h("GET /api/vhosts/{vhost}", levelManagement, a.getVhost)
	h("PUT /api/vhosts/{vhost}", levelAdmin, a.putVhost)
	h("DELETE /api/vhosts/{vhost}", levelAdmin, a.deleteVhost)
	h("GET /api/vhosts/{vhost}/permissions", levelAdmin, a.vhostPermissions)
	h("GET /api/vhosts/{vhost}/connections", levelManagement, a.listConnections)
	h("GET /api/vhosts/{vhost}/channels", levelManagement, a.listChannels)

	h("GET /api/users", levelAdmin, a.listUsers)
	h("GET /api/users/{user}", levelAdmin, a.getUser)
	h("PUT /api/users/{user}", levelAdmin, a.putUser)
	h("DELETE /api/users/{user}", levelAdmin, a.deleteUser)
	h("GET /api/users/{user}/permissions", levelAdmin, a.userPermissions)

	h("GET /api/permissions", levelAdmin, a.listPermissions(nil))
	h("GET /api/permissions/{vhost}/{user}", levelAdmin, a.getPermission)
	h("PUT /api/permissions/{vhost}/{user}", levelAdmin, a.putPermission)
	h("DELETE /api/permissions/{vhost}/{user}", levelAdmin, a.deletePermission)
	a.limitRoutes(h) // vhost and user limits (limits.go)

	// RabbitMQ's topic permissions (topic_permissions.go).
	h("GET /api/topic-permissions", levelAdmin, a.listTopicPermissions)
	h("GET /api/topic-permissions/{vhost}/{user}", levelAdmin, a.getTopicPermissions)
	h("PUT /api/topic-permissions/{vhost}/{user}", levelAdmin, a.putTopicPermission)
	h("DELETE /api/topic-permissions/{vhost}/{user}", levelAdmin, a.deleteTopicPermissions)
	h("DELETE /api/topic-permissions/{vhost}/{user}/{exchange}", levelAdmin, a.deleteTopicPermissions)
	h("GET /api/users/{user}/topic-permissions", levelAdmin, a.userTopicPermissions)
	h("GET /api/vhosts/{vhost}/topic-permissions", levelAdmin, a.vhostTopicPermissions)

	// Kafka ACLs (acls.go), Sluice's own.
	h("GET /api/acls", levelAdmin, a.listACLs)
	h("POST /api/acls", levelAdmin, a.createACLs)
	h("DELETE /api/acls", levelAdmin, a.deleteACL)

	h("GET /api/exchanges", levelManagement, a.listExchanges)
	h("GET /api/exchanges/{vhost}", levelManagement, a.listExchanges)
	h("GET /api/exchanges/{vhost}/{name}", levelManagement, a.getExchange)
	h("PUT /api/exchanges/{vhost}/{name}", levelManagement, a.putExchange)
	h("DELETE /api/exchanges/{vhost}/{name}", levelManagement, a.deleteExchange)
	h("GET /api/exchanges/{vhost}/{name}/bindings/source", levelManagement, a.exchangeBindings(true))
	h("GET /api/exchanges/{vhost}/{name}/bindings/destination", levelManagement, a.exchangeBindings(false))
	h("POST /api/exchanges/{vhost}/{name}/publish", levelManagement, a.publish)

	h("GET /api/queues", levelManagement, a.listQueues)
	h("GET /api/queues/{vhost}", levelManagement, a.listQueues)
	h("GET /api/queues/{vhost}/{name}", levelManagement, a.getQueue)
	h("PUT /api/queues/{vhost}/{name}", levelManagement, a.putQueue)
	h("DELETE /api/queues/{vhost}/{name}", levelManagement, a.deleteQueue)
	h("GET /api/queues/{vhost}/{name}/bindings", levelManagement, a.queueBindings)
	h("DELETE /api/queues/{vhost}/{name}/contents", levelManagement, a.purgeQueue)
	h("POST /api/queues/{vhost}/{name}/get", levelManagement, a.get)
	// Sluice's own: 1 s samples of inflow, outflow and backlog (live.go).
	h("GET /api/live/queues/{vhost}/{name}", levelManagement, a.liveQueue)

	h("GET /api/bindings", levelManagement, a.listBindings)
	h("GET /api/bindings/{vhost}", levelManagement, a.listBindings)
	// q and e as in RabbitMQ; t (a topic, Sluice's own) feeds a topic.
	for _, kind := range []string{"q", "e", "t"} {
		base := "/api/bindings/{vhost}/e/{src}/" + kind + "/{dst}"
		h("GET "+base, levelManagement, a.listBindingsBetween(kind))
		h("POST "+base, levelManagement, a.postBinding(kind))
		h("GET "+base+"/{props}", levelManagement, a.getBinding(kind))
		h("DELETE "+base+"/{props}", levelManagement, a.deleteBinding(kind))
	}
	// A topic bound to a queue (Sluice's own): the queue is fed the topic's records.
	base := "/api/bindings/{vhost}/t/{src}/q/{dst}"
	h("GET "+base, levelManagement, a.listBindingsBetween(topicToQueue))
	h("POST "+base, levelManagement, a.postBinding(topicToQueue))
	h("GET "+base+"/{props}", levelManagement, a.getBinding(topicToQueue))
	h("DELETE "+base+"/{props}", levelManagement, a.deleteBinding(topicToQueue))

	h("GET /api/connections", levelManagement, a.listConnections)
	h("GET /api/connections/{name}", levelManagement, a.getConnection)
	h("DELETE /api/connections/{name}", levelManagement, a.closeConnection)
	h("GET /api/connections/{name}/channels", levelManagement, a.connectionChannels)
	h("GET /api/channels", levelManagement, a.listChannels)
	h("GET /api/channels/{name}", levelManagement, a.getChannel)
	h("GET /api/consumers", levelManagement, a.listConsumers)
	h("GET /api/consumers/{vhost}", levelManagement, a.listConsumers)

	for _, kind := range []struct {
		path     string
		need     level
		operator bool
	}{{"policies", levelPolicymaker, false}, {"operator-policies", levelAdmin, true}} {
		base := "/api/" + kind.path
		h("GET "+base, kind.need, a.listPolicies(kind.operator))
		h("GET "+base+"/{vhost}", kind.need, a.listPolicies(kind.operator))
		h("GET "+base+"/{vhost}/{name}", kind.need, a.getPolicy(kind.operator))
		h("PUT "+base+"/{vhost}/{name}", kind.need, a.putPolicy(kind.operator))
		h("DELETE "+base+"/{vhost}/{name}", kind.need, a.deletePolicy(kind.operator))
	}

	h("GET /api/definitions", levelAdmin, a.exportDefinitions)
	h("POST /api/definitions", levelAdmin, a.importDefinitions)
	h("GET /api/definitions/{vhost}", levelAdmin, a.exportDefinitions)
	h("POST /api/definitions/{vhost}", levelAdmin, a.importDefinitions)

	a.mux.Handle("GET /api/health/checks/alarms", a.health(a.checkAlarms))
	a.mux.Handle("GET /api/health/checks/local-alarms", a.health(a.checkAlarms))
	a.mux.Handle("GET /api/health/checks/virtual-hosts", a.health(a.checkVirtualHosts))
	a.mux.Handle("GET /api/health/checks/port-listener/{port}", a.health(a.checkPortListener))
	a.mux.Handle("GET /api/health/checks/protocol-listener/{protocol}", a.health(a.checkProtocolListener))
	a.mux.Handle("GET /api/health/checks/node-is-quorum-critical", a.health(a.checkSingleNode))
	a.mux.Handle("GET /api/health/checks/node-is-mirror-sync-critical", a.health(a.checkSingleNode))
	a.mux.Handle("GET /api/health/checks/certificate-expiration/{within}/{unit}", a.health(a.checkCertificateExpiration))
	a.mux.Handle("GET /api/health/checks/is-in-service", a.health(a.checkInService))
	a.mux.Handle("GET /api/health/checks/below-node-connection-limit", a.health(a.checkReadyToServe))
	a.mux.Handle("GET /api/health/checks/ready-to-serve-clients", a.health(a.checkReadyToServe))
	a.mux.Handle("GET /api/health/checks/metadata-store/initialized", a.health(a.checkSingleNode))
	a.mux.Handle("GET /api/health/checks/metadata-store/initialized/with-data", a.health(a.checkSingleNode))
	a.mux.Handle("GET /api/health/checks/quorum-queues-without-elected-leaders/all-vhosts", a.health(a.checkSingleNode))
	a.mux.Handle("GET /api/health/checks/quorum-queues-without-elected-leaders/vhost/{vhost}", a.health(a.checkSingleNode))
	h("GET /api/healthchecks/node", levelManagement, a.healthchecksNode)
	h("GET /api/healthchecks/node/{node}", levelManagement, a.healthchecksNode)
	h("GET /api/aliveness-test/{vhost}", levelManagement, a.alivenessTest)

	if a.opts.Kafka != nil {
		h("GET /api/kafka/topics", levelMonitoring, a.listTopics)
		h("GET /api/kafka/topics/{name}", levelMonitoring, a.getTopic)
		h("PUT /api/kafka/topics/{name}", levelAdmin, a.putTopic)
		h("DELETE /api/kafka/topics/{name}", levelAdmin, a.deleteTopic)
		h("GET /api/kafka/groups", levelMonitoring, a.listGroups)
		h("GET /api/kafka/groups/{id}", levelMonitoring, a.getGroup)
		h("GET /api/kafka/share-groups", levelMonitoring, a.listShareGroups)
		h("GET /api/kafka/share-groups/{id}", levelMonitoring, a.getShareGroup)
		h("GET /api/live/topics/{name}", levelMonitoring, a.liveTopic)
	}

	// The web console: every other path (its page and assets; GET and HEAD).
	a.mux.Handle("/", console.Handler())

	// Anything else under /api is a JSON 404, as in RabbitMQ.
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) { writeError(w, notFound()) })
}
