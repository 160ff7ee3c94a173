package mgmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-mq/sluice/internal/broker/alarm"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/version"
)

// RabbitMQVersion is the RabbitMQ version whose management API Sluice
// imitates, reported as rabbitmq_version and management_version; tools
// that branch on rabbitmq_version see this. It is a 3.x version because
// Sluice answers in 3.x shapes (message_stats, classic-mirroring policy
// keys accepted), and a 4.x version would tell tools to expect RabbitMQ 4's
// API, which differs; 3.10.8 is the version of the rabbitmqadmin the
// tests drive (docs/management-api.md, "Versions").
const RabbitMQVersion = "3.10.8"

// Listener is one protocol listener, reported in the overview and checked
// by the port-listener and protocol-listener health checks.
type Listener struct {
	Protocol string // "amqp", "kafka", "http"
	Addr     net.Addr
}

// Options are the API's dependencies. Router and Meta are required; a nil
// Kafka, Groups or Connections hides that part.
type Options struct {
	Router *broker.Router
	Meta   *meta.Store
	Kafka  *broker.Broker
	Groups *groups.Coordinator
	// Connections is the registry of client connections, which the
	// connection, channel and consumer endpoints list and close.
	Connections *broker.Connections

	ClusterName string // default "sluice"
	NodeName    string // default "sluice@<hostname>"
	// BrokerID is a single node's node_id in /api/nodes: its Kafka
	// broker id. Default (0) 1, kafka.NodeID.
	BrokerID int32
	// Rack is a single node's rack in /api/nodes. Default "".
	Rack string
	// ClusterNodes lists the nodes of the cluster (nodes.go); nil: a
	// single node, which lists itself.
	ClusterNodes func() []ClusterNode
	// ClusterPartitions lists the partitions of placed topics as this
	// node sees them (cluster_partitions.go); nil on a single node.
	ClusterPartitions func() []PartitionState
	Version           string // product_version; default Sluice's own (package version)
	// Membership adds and removes nodes of the cluster (membership.go);
	// nil: a single node, which answers 404.
	Membership Membership
	// LoopbackUsers may log in only from a loopback address. Default
	// ["guest"], as for AMQP.
	LoopbackUsers []string
	Listeners     []Listener
	// Resources reports memory and disk use, their limits and the
	// resource alarms in effect; nil means the node watches none, and the
	// alarm checks pass.
	Resources func() alarm.Status
	// Failures lists the logs refusing writes after a storage failure
	// (broker.Recovery.Failures); nil: none are watched.
	Failures func() []broker.LogFailure
	// ConnectionCaps reports the front ends' open connections and caps
	// (below-node-connection-limit); nil: no caps.
	ConnectionCaps func() []ConnectionCap

	Logger *slog.Logger
	Now    func() time.Time
}

// API serves the management HTTP API.
type API struct {
	opts    Options
	mux     *http.ServeMux
	checker *auth.Checker
	started time.Time
	stats   *sampler
	live    *liveRing
}

// New returns the API; serve it with API as an http.Handler.
func New(opts Options) *API {
	if opts.ClusterName == "" {
		opts.ClusterName = "sluice"
	}
	if opts.NodeName == "" {
		h, _ := hostnameShort()
		opts.NodeName = "sluice@" + h
	}
	if opts.LoopbackUsers == nil {
		opts.LoopbackUsers = []string{auth.DefaultUser}
	}
	if opts.BrokerID == 0 {
		opts.BrokerID = 1
	}
	if opts.Version == "" {
		opts.Version = version.Get().Version
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &API{opts: opts, mux: http.NewServeMux(), checker: auth.NewChecker(0), started: opts.Now()}
	a.stats = newSampler(opts.Now, sampleInterval, a.collectStats)
	a.live = newLiveRing(opts.Now)
	a.routes()
	if opts.Router != nil {
		opts.Router.SetNodeInfo(a.nodeInfo)
	}
	return a
}

// Run samples the totals behind message rates every 5 seconds, and the
// live curves of watched queues and topics every second (live.go), until
// stop is closed. Without it, both are sampled when requests come.
func (a *API) Run(stop <-chan struct{}) {
	go a.live.Run(stop)
	a.stats.Run(stop)
}

// windows reads a request's sampling windows and brings the samples up to
// date, for a handler that reports rates.
func (a *API) windows(r *http.Request) (rateWindows, error) {
	w, err := parseWindows(r)
	if err != nil {
		return w, err
	}
	a.stats.maybeSample()
	return w, nil
}

// Handle mounts an extra handler (for example Prometheus' /metrics) on
// the same port. It is not behind the API's authentication.
func (a *API) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// An encoded slash ("%2F", the vhost "/") makes a path segment that
	// http.ServeMux does not match as one segment; carry it as a
	// private-use character instead, which pathValue turns back.
	if raw := r.URL.RawPath; raw != "" && strings.Contains(strings.ToUpper(raw), "%2F") {
		raw = strings.ReplaceAll(strings.ReplaceAll(raw, "%2F", slashEscaped), "%2f", slashEscaped)
		if p, err := url.PathUnescape(raw); err == nil {
			r2 := *r
			u := *r.URL
			u.RawPath, u.Path = raw, p
			r2.URL = &u
			r = &r2
		}
	}
	r = trimTrailingSlash(r)
	a.mux.ServeHTTP(w, r)
}

// trimTrailingSlash serves every management path with or without a
// trailing slash, as RabbitMQ does ("GET /api/connections/" is the list of
// connections): a path under /api/ that ends in "/" is served as the path
// without it. "/api/" itself is left alone.
func trimTrailingSlash(r *http.Request) *http.Request {
	p := r.URL.Path
	if len(p) <= len("/api/") || !strings.HasPrefix(p, "/api/") || !strings.HasSuffix(p, "/") {
		return r
	}
	r2 := *r
	u := *r.URL
	u.Path = strings.TrimRight(p, "/")
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/")
	}
	if u.Path == "/api" {
		return r
	}
	r2.URL = &u
	return &r2
}

// slashSentinel stands for an encoded "/" inside a path segment.
const (
	slashSentinel = "\uf8ff"
	slashEscaped  = "%EF%A3%BF"
)

// pathValue is r.PathValue with encoded slashes restored.
func pathValue(r *http.Request, key string) string {
	return strings.ReplaceAll(r.PathValue(key), slashSentinel, "/")
}

// level is what a route requires of the user's tags.
type level int

const (
	levelManagement level = iota
	levelMonitoring
	levelAdmin
	levelPolicymaker // policymaker or administrator
)

// session is an authenticated request's user.
type session struct {
	user        meta.User
	admin       bool
	monitoring  bool // monitoring or administrator
	policymaker bool // policymaker or administrator
	a           *API
}

// seesAll reports whether the user may read every vhost and connection.
func (s *session) seesAll() bool { return s.admin || s.monitoring }

// canSeeVhost reports whether the user may read objects in vh.
func (s *session) canSeeVhost(vh string) bool {
	if s.seesAll() {
		return true
	}
	_, ok := s.a.opts.Meta.Permission(s.user.Name, vh)
	return ok
}

// permitted checks the user's vhost permission pattern for an operation
// on a resource, as the AMQP front end does. kind is "queue" or
// "exchange" (for messages).
func (s *session) permitted(vh string, acc auth.Access, kind, name string) error {
	p, ok := s.a.opts.Meta.Permission(s.user.Name, vh)
	if !ok {
		return &apiError{http.StatusUnauthorized, "not_authorised", "User not authorised to access virtual host"}
	}
	res := name
	if kind == "exchange" {
		res = auth.ExchangeResource(name)
	}
	if !s.a.checker.Check(auth.Permission{Configure: p.Configure, Write: p.Write, Read: p.Read}, acc, res) {
		return &apiError{http.StatusForbidden, "access_refused", fmt.Sprintf("access to %s '%s' in vhost '%s' refused for user '%s'", kind, name, vh, s.user.Name)}
	}
	return nil
}

// apiError is an error response.
type apiError struct {
	status        int
	error, reason string
}

func (e *apiError) Error() string { return e.error + ": " + e.reason }

func notFound() *apiError {
	return &apiError{http.StatusNotFound, "Object Not Found", "Not Found"}
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

// fromBroker maps a core error to its HTTP answer by its kind.
func fromBroker(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	text := err.Error()
	var ce *broker.Error
	if errors.As(err, &ce) {
		text = strings.TrimPrefix(text, ce.Error()+": ")
	}
	switch broker.KindOf(err) {
	case broker.KindNotFound, broker.KindNotAllowed:
		return notFound()
	case broker.KindExists, broker.KindInvalid, broker.KindConflict, broker.KindInvalidCommand, broker.KindLocked:
		return badRequest("%s", text)
	case broker.KindAccessRefused:
		return &apiError{http.StatusForbidden, "access_refused", text}
	}
	return &apiError{http.StatusInternalServerError, "internal_error", text}
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.error, "reason": e.reason})
}

// writeRequestError is writeError, except that a 401 to a script (the web
// console sends X-Requested-With: XMLHttpRequest) carries no
// WWW-Authenticate challenge, so the browser does not pop up its own login
// dialog over the console's.
func writeRequestError(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.status == http.StatusUnauthorized && r.Header.Get("X-Requested-With") == "XMLHttpRequest" {
		writeJSON(w, e.status, map[string]string{"error": e.error, "reason": e.reason})
		return
	}
	writeError(w, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// handlerFunc is an API handler: it returns the value to send as JSON (nil
// for 204 No Content... or 201 Created, see created) or an error.
type handlerFunc func(r *http.Request, s *session) (any, error)

// created marks a successful PUT/POST that made something: 201, no body.
type created struct{}

// noContent marks a success without a body: 204.
type noContent struct{}

// handle registers an authenticated route.
func (a *API) handle(pattern string, need level, h handlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s, aerr := a.authenticate(r, need)
		if aerr != nil {
			writeRequestError(w, r, aerr)
			return
		}
		v, err := h(r, s)
		if err != nil {
			writeRequestError(w, r, fromBroker(err))
			return
		}
		switch v.(type) {
		case created:
			w.WriteHeader(http.StatusCreated)
		case noContent:
			w.WriteHeader(http.StatusNoContent)
		case healthResult:
			writeJSON(w, v.(healthResult).status, v.(healthResult).body)
		default:
			writeJSON(w, http.StatusOK, v)
		}
	})
}

// authenticate checks basic auth, the loopback rule and the user's tags.
func (a *API) authenticate(r *http.Request, need level) (*session, *apiError) {
	name, pass, ok := r.BasicAuth()
	if !ok {
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Login failed"}
	}
	u, found := a.opts.Meta.User(name)
	if !found || !auth.CheckPassword(u.PasswordHash, pass) {
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Login failed"}
	}
	if !auth.LoginAllowedFrom(name, remoteAddr(r), a.opts.LoopbackUsers) {
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", fmt.Sprintf("User '%s' can only connect via localhost", name)}
	}
	s := &session{user: u, a: a}
	mgmt := false
	for _, t := range u.Tags {
		switch t {
		case "administrator":
			s.admin, s.monitoring, s.policymaker, mgmt = true, true, true, true
		case "monitoring":
			s.monitoring, mgmt = true, true
		case "policymaker":
			s.policymaker, mgmt = true, true
		case "management":
			mgmt = true
		}
	}
	switch {
	case !mgmt:
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Not management user"}
	case need == levelAdmin && !s.admin:
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Not administrator user"}
	case need == levelMonitoring && !s.monitoring:
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Not monitor user"}
	case need == levelPolicymaker && !s.policymaker:
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Not policymaker user"}
	}
	return s, nil
}

func remoteAddr(r *http.Request) net.Addr {
	if ap, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		return ap
	}
	return &net.TCPAddr{}
}

// vhostParam reads and checks the {vhost} path value: 404 if it does not
// exist or the user may not see it.
func (s *session) vhostParam(r *http.Request) (string, error) {
	vh := pathValue(r, "vhost")
	if _, ok := s.a.opts.Meta.Vhost(vh); !ok {
		return "", notFound()
	}
	if !s.canSeeVhost(vh) {
		return "", &apiError{http.StatusUnauthorized, "not_authorised", "User not authorised to access virtual host"}
	}
	return vh, nil
}

// visibleVhosts lists the vhosts the user may read, sorted.
func (s *session) visibleVhosts() []string {
	var out []string
	for _, v := range s.a.opts.Meta.Vhosts() {
		if s.canSeeVhost(v.Name) {
			out = append(out, v.Name)
		}
	}
	slices.Sort(out)
	return out
}

// vhostsOf is the one vhost named in the path, or every visible one.
func (s *session) vhostsOf(r *http.Request) ([]string, error) {
	if pathValue(r, "vhost") == "" {
		return s.visibleVhosts(), nil
	}
	vh, err := s.vhostParam(r)
	if err != nil {
		return nil, err
	}
	return []string{vh}, nil
}

// decodeBody reads a JSON request body into v; an empty body leaves v
// as it is.
func decodeBody(r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<20)
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
		return badRequest("malformed JSON body: %v", err)
	}
	return nil
}

// flexBool is a JSON boolean that rabbitmqadmin sends as "true"/"false".
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	s := strings.Trim(string(p), `"`)
	switch s {
	case "true":
		*b = true
	case "false", "", "null":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", p)
	}
	return nil
}

// flexInt is a JSON integer that may arrive as a string.
type flexInt int64

func (n *flexInt) UnmarshalJSON(p []byte) error {
	s := strings.Trim(string(p), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", p)
	}
	*n = flexInt(v)
	return nil
}

// tagList is a user's tags: a comma-separated string (RabbitMQ before
// 3.9 and rabbitmqadmin) or a JSON list.
type tagList []string

func (t *tagList) UnmarshalJSON(p []byte) error {
	var list []string
	if err := json.Unmarshal(p, &list); err == nil {
		*t = list
		return nil
	}
	var s string
	if err := json.Unmarshal(p, &s); err != nil {
		return err
	}
	*t = nil
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*t = append(*t, f)
		}
	}
	return nil
}

func queryBool(r *http.Request, key string) bool {
	v := r.URL.Query().Get(key)
	return v == "true" || v == "1"
}
