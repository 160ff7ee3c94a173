package kafka

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASL authentication (17_sasl_handshake.go, 36_sasl_authenticate.go).
//
// A connection starts authenticated as the anonymous principal (user "")
// when the listener lets its address in without credentials
// (Options.Anonymous); otherwise it must log in with SASL before anything
// but ApiVersions, SaslHandshake and SaslAuthenticate: any other request
// closes the connection, as Kafka does. The login runs in the read loop,
// so the principal is set before the next request is read. The SASL code
// only reads and writes Kafka frames: it works the same on any net.Conn
// the server serves, plain TCP or TLS.

// AnonymousAccess says which addresses may use the listener without
// authenticating.
type AnonymousAccess uint8

const (
	// AnonymousLoopback (the default) lets loopback clients in without
	// credentials, as RabbitMQ does for guest; every other address must
	// authenticate.
	AnonymousLoopback AnonymousAccess = iota
	// AnonymousNone requires SASL (or a client certificate) everywhere.
	AnonymousNone
	// AnonymousAll lets every address in without credentials: the
	// listener is open to anyone who can reach it.
	AnonymousAll
)

// ParseAnonymousAccess reads "loopback", "none" or "all".
func ParseAnonymousAccess(s string) (AnonymousAccess, error) {
	switch s {
	case "loopback", "":
		return AnonymousLoopback, nil
	case "none":
		return AnonymousNone, nil
	case "all":
		return AnonymousAll, nil
	}
	return 0, fmt.Errorf("kafka anonymous access %q: want loopback, none or all", s)
}

func (a AnonymousAccess) String() string {
	return [...]string{"loopback", "none", "all"}[a]
}

// anonymousAllowed decides whether a connection from remote may act as
// the anonymous principal.
func anonymousAllowed(a AnonymousAccess, remote net.Addr) bool {
	switch a {
	case AnonymousAll:
		return true
	case AnonymousLoopback:
		return auth.IsLoopback(remote)
	}
	return false
}

// UserStore is where SASL looks users up and where the SCRAM credential
// APIs change them: the same users as AMQP and the management API.
type UserStore interface {
	User(name string) (broker.User, bool)
	Users() []broker.User
	PutUser(broker.User) error
}

// AuthHooks, when the Hooks implement it too, count failed logins by
// mechanism.
type AuthHooks interface {
	AuthFailed(mechanism string)
}

// saslMechanisms are the mechanisms offered, in SaslHandshake's answer.
var saslMechanisms = []string{"PLAIN", auth.ScramSHA256.Name, auth.ScramSHA512.Name}

// maxSaslFrame caps a request frame read before the connection has
// authenticated (Kafka's sasl.server.max.receive.size default), so an
// unauthenticated client cannot make the server buffer a large frame.
const maxSaslFrame = 512 << 10

// saslState is a connection's authentication state; read-loop state.
type saslState struct {
	// authenticated: requests other than the SASL ones may be served.
	authenticated bool
	// mechanism is the mechanism the last SaslHandshake chose, "" when
	// no exchange is under way.
	mechanism string
	// raw: a v0 SaslHandshake chose the mechanism, so the tokens come as
	// bare length-prefixed frames, not SaslAuthenticate requests.
	raw bool
	// scram is the SCRAM exchange under way.
	scram *auth.ScramServer
	// principal and principalMech are the user and mechanism of the
	// first SASL login; a re-authentication (KIP-368) must keep both.
	principal, principalMech string
	// expires is when the SASL session ends (zero: never); after it only
	// a re-authentication is served.
	expires time.Time
	// closeAfter, when set, is why the connection closes once the answer
	// just prepared is written.
	closeAfter string
}

// errSaslFailed is a failed login: the error goes to the client, then the
// connection closes.
var errSaslFailed = errors.New("Authentication failed: Invalid username or password")

// admit decides whether a request with key may be served now; an error
// closes the connection.
func (c *conn) admit(key int16) error {
	switch key {
	case apiVersionsKey, saslHandshakeKey, saslAuthenticateKey:
		return nil
	}
	st := &c.sasl
	if !st.authenticated {
		return fmt.Errorf("%w: %s before SASL authentication", errDropConn, kmsg.NameForKey(key))
	}
	if st.mechanism != "" {
		return fmt.Errorf("%w: %s during SASL authentication", errDropConn, kmsg.NameForKey(key))
	}
	if !st.expires.IsZero() && time.Now().After(st.expires) {
		return fmt.Errorf("%w: SASL session of %q expired, not re-authenticated", errDropConn, st.principal)
	}
	return nil
}

// saslStep runs one client token of the exchange under way and returns
// the server's token; done is true once the client has logged in. A
// non-nil error is a failed login (errSaslFailed or a reason it wraps),
// already logged and counted.
func (c *conn) saslStep(token []byte) (resp []byte, done bool, err error) {
	st := &c.sasl
	s := c.s
	var user string
	switch st.mechanism {
	case "PLAIN":
		u, pass, perr := auth.ParsePlain(token)
		if perr != nil {
			return nil, false, c.loginFailed(u, perr)
		}
		stored, ok := c.lookupUser(u)
		if !ok || !auth.CheckPassword(stored.PasswordHash, pass) {
			return nil, false, c.loginFailed(u, errors.New("unknown user or wrong password"))
		}
		user, done = u, true
	default:
		m := auth.ScramMechanismNamed(st.mechanism)
		if m == nil { // not reached: SaslHandshake offers only these
			return nil, false, c.loginFailed("", fmt.Errorf("mechanism %q not offered", st.mechanism))
		}
		if st.scram == nil {
			st.scram = auth.NewScramServer(m, c.scramCredential(m), nil, s.scramSecret)
		}
		resp, done, err = st.scram.Step(token)
		if err != nil {
			u := st.scram.User()
			st.scram = nil
			return nil, false, c.loginFailed(u, err)
		}
		if done {
			if tok := st.scram.Extensions()["tokenauth"]; tok == "true" {
				return nil, false, c.loginFailed(st.scram.User(), errors.New("delegation tokens are not supported"))
			}
			user = st.scram.User()
			st.scram = nil
		}
	}
	if !done {
		return resp, false, nil
	}
	if !auth.LoginAllowedFrom(user, c.nc.RemoteAddr(), s.opts.LoopbackUsers) {
		c.authFailed(user, st.mechanism, "user may only connect from loopback")
		return nil, false, fmt.Errorf("Authentication failed: user '%s' can only connect via localhost", user)
	}
	if st.principal != "" && (user != st.principal || st.mechanism != st.principalMech) {
		err := fmt.Errorf("re-authentication as %q with %s, the connection is %q with %s", user, st.mechanism, st.principal, st.principalMech)
		c.authFailed(user, st.mechanism, err.Error())
		return nil, false, fmt.Errorf("Authentication failed: %v", err)
	}
	if st.principal == "" {
		if err := c.countConn(user); err != nil { // logged and counted
			return nil, false, fmt.Errorf("Authentication failed: %v", err)
		}
		c.log.Debug("kafka SASL login", "user", user, "mechanism", st.mechanism)
	}
	c.loggedIn(user, st.mechanism)
	st.mechanism, st.raw = "", false
	if lt := s.opts.SASLSessionLifetime; lt > 0 {
		st.expires = time.Now().Add(lt)
	}
	return resp, true, nil
}

// loggedIn makes the connection act as user, authenticated by mechanism
// ("PLAIN", "SCRAM-SHA-512", ...): requests are served from now on, and a
// re-authentication must keep both. A client certificate authenticates
// without it (tls.go), so that a SASL login on the same connection is a
// first login, as on Kafka's SASL_SSL listeners. Read-loop state, called before the next request is
// read.
func (c *conn) loggedIn(user, mechanism string) {
	st := &c.sasl
	st.principal, st.principalMech, st.authenticated = user, mechanism, true
	if c.user != user { // the same user on re-authentication: no write
		c.user = user
	}
}

// loginFailed logs and counts a failed login, holds its answer as long
// as the login limiter says (auth.FailureLimiter: repeated failures from
// one address are answered ever later), and returns the error the client
// is told.
func (c *conn) loginFailed(user string, reason error) error {
	delay := c.s.opts.LoginLimiter.Failed(c.nc.RemoteAddr(), time.Now())
	c.authFailed(user, c.sasl.mechanism, reason.Error(), "delay", delay.Round(time.Millisecond).String())
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	return errSaslFailed
}

func (c *conn) authFailed(user, mechanism, reason string, attrs ...any) {
	c.log.Info("kafka login refused", append([]any{"user", user, "mechanism", mechanism, "reason", reason}, attrs...)...)
	if h, ok := c.s.opts.Hooks.(AuthHooks); ok {
		h.AuthFailed(mechanism)
	}
}

func (c *conn) lookupUser(name string) (broker.User, bool) {
	if c.s.opts.Users == nil {
		return broker.User{}, false
	}
	return c.s.opts.Users.User(name)
}

// scramCredential returns the lookup of users' m credentials.
func (c *conn) scramCredential(m *auth.ScramMechanism) func(string) (auth.ScramCredential, bool) {
	return func(name string) (auth.ScramCredential, bool) {
		u, ok := c.lookupUser(name)
		if !ok {
			return auth.ScramCredential{}, false
		}
		i := slices.IndexFunc(u.Scram, func(sc broker.ScramCredential) bool { return sc.Mechanism == m.Name })
		if i < 0 {
			return auth.ScramCredential{}, false
		}
		return auth.ScramCredential(u.Scram[i]), true
	}
}

// readRawSaslToken reads and handles one bare token frame after a v0
// SaslHandshake. A failed login has no error channel there: the
// connection closes.
func (c *conn) readRawSaslToken(r io.Reader, size int) (pendingResp, error) {
	token, err := readFrame(r, size)
	if err != nil {
		return pendingResp{}, err
	}
	resp, _, err := c.saslStep(token)
	if err != nil {
		return pendingResp{}, fmt.Errorf("%w: %v", errDropConn, err)
	}
	if resp == nil {
		resp = []byte{}
	}
	return pendingResp{raw: resp, start: time.Now()}, nil
}

// enabledMechanisms is the list told to a client asking for another.
func enabledMechanisms() string { return strings.Join(saslMechanisms, ", ") }
