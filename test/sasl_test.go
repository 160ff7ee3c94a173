package test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Kafka SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and the one user store
// shared by AMQP, HTTP and Kafka. See docs/security.md.

// saslMech builds franz-go's mechanism by SASL name.
func saslMech(name, user, pass string) sasl.Mechanism {
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	panic(name)
}

// addUser creates a user through the management API (as guest), with full
// permissions on "/".
func (b *broker) addUser(t testing.TB, name, pass, tags string) {
	t.Helper()
	b.api(t, "PUT", "/api/users/"+url.PathEscape(name), map[string]any{"password": pass, "tags": tags}, 201)
	b.api(t, "PUT", "/api/permissions/%2F/"+url.PathEscape(name), map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, 201)
}

// produceConsume produces n records to topic through cl and reads them
// back with a new client made by mk.
func produceConsume(t *testing.T, cl *kgo.Client, topic string, n int, consumer func(...kgo.Opt) *kgo.Client) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", topic, i)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	cons := consumer(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: %d of %d records: %v", topic, got, n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consume %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("%s-%d", topic, got); string(r.Value) != want {
				t.Fatalf("record %d = %q, want %q", got, r.Value, want)
			}
			got++
		})
	}
}

// loginErr is the error a franz-go client with mech meets on its first
// request.
func loginErr(t *testing.T, b *broker, mech sasl.Mechanism) error {
	t.Helper()
	cl := b.client(t, kgo.SASL(mech), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	ctx := ctxT(t, 15*time.Second)
	_, err := kadm.NewClient(cl).ListTopics(ctx)
	return err
}

// TestSASLOneUserStoreAllProtocols: a user created once through the
// management API logs in over HTTP basic auth, AMQP PLAIN and Kafka PLAIN,
// SCRAM-SHA-256 and SCRAM-SHA-512 (franz-go), on a listener that requires
// SASL; wrong passwords and unknown users are refused with
// SASL_AUTHENTICATION_FAILED (AMQP: ACCESS_REFUSED), logged and counted
// in /metrics.
func TestSASLOneUserStoreAllProtocols(t *testing.T) {
	b := startBroker(t, "--kafka-anonymous=none", "--log-level=info")
	b.addUser(t, "alice", "wonder,land=1", "management")

	if code, body := b.httpDo(t, "alice", "wonder,land=1", "GET", "/api/whoami", nil); code != 200 || !strings.Contains(string(body), `"alice"`) {
		t.Fatalf("HTTP basic auth as alice: %d %s", code, body)
	}
	conn, err := amqp.Dial("amqp://alice:" + url.QueryEscape("wonder,land=1") + "@" + b.AMQP + "/")
	if err != nil {
		t.Fatalf("AMQP PLAIN as alice: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("alice-q", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	for _, m := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(m, func(t *testing.T) {
			mech := saslMech(m, "alice", "wonder,land=1")
			cl := b.client(t, kgo.SASL(mech), kgo.AllowAutoTopicCreation())
			topic := "sasl-" + strings.ToLower(m)
			produceConsume(t, cl, topic, 5, func(o ...kgo.Opt) *kgo.Client {
				return b.client(t, append(o, kgo.SASL(mech))...)
			})
		})
	}

	// Refusals.
	for _, tc := range []struct{ mech, user, pass string }{
		{"SCRAM-SHA-512", "alice", "wrong"},
		{"SCRAM-SHA-256", "nobody", "wonder,land=1"},
		{"PLAIN", "alice", "wrong"},
		{"PLAIN", "nobody", "x"},
	} {
		err := loginErr(t, b, saslMech(tc.mech, tc.user, tc.pass))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s as %s/%s: %v, want SASL_AUTHENTICATION_FAILED", tc.mech, tc.user, tc.pass, err)
		}
	}
	if _, err := amqp.Dial("amqp://alice:wrong@" + b.AMQP + "/"); amqpErrCode(err) != amqp.AccessRefused {
		t.Errorf("AMQP with a wrong password: %v, want ACCESS_REFUSED", err)
	}
	s := b.scrape(t)
	for _, want := range []struct {
		labels []string
		min    float64
	}{
		{[]string{"protocol=kafka", "mechanism=SCRAM-SHA-512"}, 1},
		{[]string{"protocol=kafka", "mechanism=SCRAM-SHA-256"}, 1},
		{[]string{"protocol=kafka", "mechanism=PLAIN"}, 2},
		{[]string{"protocol=amqp", "mechanism=PLAIN"}, 1},
	} {
		if v, _ := s.value("sluice_auth_failures_total", want.labels...); v < want.min {
			t.Errorf("sluice_auth_failures_total%v = %v, want at least %v", want.labels, v, want.min)
		}
	}
	logs := b.Logs()
	for _, want := range []string{
		`"msg":"kafka login refused".*"user":"nobody","mechanism":"SCRAM-SHA-256"`,
		`"msg":"kafka login refused".*"user":"alice","mechanism":"SCRAM-SHA-512"`,
		`"msg":"kafka login refused".*"user":"alice","mechanism":"PLAIN"`,
		`"msg":"login refused".*"user":"alice","mechanism":"PLAIN"`, // AMQP
	} {
		if !regexp.MustCompile(want).MatchString(logs) {
			t.Errorf("server log lacks %q:\n%s", want, clip(logs))
		}
	}

	// Without SASL, a listener that requires it serves nothing but
	// ApiVersions and the SASL requests: anything else closes the
	// connection.
	rk := dialRawKafka(t, b.Kafka)
	if _, err := rk.do(kmsg.NewPtrApiVersionsRequest()); err != nil {
		t.Fatalf("ApiVersions before login: %v", err)
	}
	if resp, err := rk.do(kmsg.NewPtrMetadataRequest()); err == nil {
		t.Fatalf("Metadata before login answered: %+v", resp)
	}
}

// TestSASLAnonymousDefaultLoopback: by default a client on loopback needs
// no credentials, and one from another address of this machine must log
// in. The second half needs a non-loopback address; the decision itself
// is unit-tested in internal/kafka (TestAnonymousAllowed).
func TestSASLAnonymousDefaultLoopback(t *testing.T) {
	ip := nonLoopbackIP()
	if ip == "" {
		t.Skip("no non-loopback address on this machine; internal/kafka TestAnonymousAllowed covers the rule")
	}
	b := &broker{t: t, DataDir: t.TempDir(), extra: []string{"--log-level=info"}}
	_, port, _ := net.SplitHostPort(freePort(t))
	b.Kafka, b.HTTP, b.AMQP = net.JoinHostPort(ip, port), freePort(t), freePort(t)
	b.start()
	t.Cleanup(b.Stop)
	b.addUser(t, "bob", "builder", "")

	rk := dialRawKafka(t, b.Kafka)
	if _, err := rk.do(kmsg.NewPtrMetadataRequest()); err == nil {
		t.Fatalf("an anonymous client from %s was served", ip)
	}
	cl := b.client(t, kgo.SASL(saslMech("SCRAM-SHA-512", "bob", "builder")), kgo.AllowAutoTopicCreation())
	produceConsume(t, cl, "from-network", 3, func(o ...kgo.Opt) *kgo.Client {
		return b.client(t, append(o, kgo.SASL(saslMech("PLAIN", "bob", "builder")))...)
	})
	// guest/guest, RabbitMQ's default user, may log in from loopback only,
	// over Kafka as over AMQP.
	if err := loginErr(t, b, saslMech("SCRAM-SHA-512", "guest", "guest")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("guest from %s: %v, want SASL_AUTHENTICATION_FAILED", ip, err)
	}
	if !strings.Contains(b.Logs(), "Metadata before SASL authentication") {
		t.Errorf("the refusal is not logged:\n%s", clip(b.Logs()))
	}
}

// TestSASLAnonymousNone: with --kafka-anonymous=none even a loopback
// client without credentials is refused, by franz-go and kcat alike.
func TestSASLAnonymousNone(t *testing.T) {
	b := startBroker(t, "--kafka-anonymous=none")
	cl := b.client(t, kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if _, err := kadm.NewClient(cl).ListTopics(ctxT(t, 10*time.Second)); err == nil {
		t.Fatal("a client without SASL listed topics")
	}
	needTool(t, kcatPath)
	if r := b.kcat(t, "", "-L", "-m", "3"); r.Err == nil {
		t.Fatalf("kcat without SASL got metadata:\n%s", r.Stdout)
	}
}

// TestSASLReauthentication (KIP-368): with a session lifetime, franz-go
// re-authenticates by itself and keeps producing; a client that does not
// is disconnected at its next request after the lifetime; a
// re-authentication as another user is refused.
func TestSASLReauthentication(t *testing.T) {
	b := startBroker(t, "--kafka-sasl-session-lifetime=1500ms", "--log-level=info")
	b.addUser(t, "carol", "c-pass", "")
	b.addUser(t, "dave", "d-pass", "")

	cl := b.client(t, kgo.SASL(saslMech("SCRAM-SHA-512", "carol", "c-pass")), kgo.AllowAutoTopicCreation())
	logins := func() uint64 {
		return b.scrape(t).count("sluice_kafka_request_duration_seconds", "api=SASLAuthenticate")
	}
	ctx := ctxT(t, 30*time.Second)
	produced := 0
	// Two SaslAuthenticate round trips per SCRAM login: wait for a first
	// login and at least two re-authentications, producing throughout.
	waitFor(t, 25*time.Second, "franz-go to re-authenticate twice", func() bool {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", produced, err)
		}
		produced++
		return logins() >= 6
	})
	if strings.Contains(b.Logs(), "expired") {
		t.Errorf("a connection expired although the client re-authenticates:\n%s", clip(b.Logs()))
	}

	// A client that never re-authenticates.
	rk := dialRawKafka(t, b.Kafka)
	resp := rk.login(t, 1, "PLAIN", []byte("\x00carol\x00c-pass"))
	if resp.SessionLifetimeMillis != 1500 {
		t.Errorf("session_lifetime_ms = %d, want 1500", resp.SessionLifetimeMillis)
	}
	start := time.Now()
	for {
		if _, err := rk.do(kmsg.NewPtrMetadataRequest()); err != nil {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("the connection outlived its session by far")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("closed %v after login, before the session's 1.5s ended", d)
	}
	waitFor(t, 5*time.Second, "the expiry logged", func() bool { return strings.Contains(b.Logs(), `SASL session of \"carol\" expired`) })

	// Re-authentication must keep the principal.
	rk = dialRawKafka(t, b.Kafka)
	rk.login(t, 1, "PLAIN", []byte("\x00carol\x00c-pass"))
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if r, err := rk.do(hs); err != nil || r.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
		t.Fatalf("re-authentication handshake: %v %+v", err, r)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 1, []byte("\x00dave\x00d-pass")
	r, err := rk.do(au)
	if err != nil {
		t.Fatal(err)
	}
	if ar := r.(*kmsg.SASLAuthenticateResponse); ar.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Errorf("re-authentication as another user: error %d, want SASL_AUTHENTICATION_FAILED", ar.ErrorCode)
	}
}

// TestSASLHandshakeErrors: an unknown mechanism is answered
// UNSUPPORTED_SASL_MECHANISM with the list; SaslAuthenticate without a
// handshake ILLEGAL_SASL_STATE; both then close the connection.
func TestSASLHandshakeErrors(t *testing.T) {
	b := startBroker(t, "--kafka-anonymous=none")
	rk := dialRawKafka(t, b.Kafka)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "GSSAPI"
	r, err := rk.do(hs)
	if err != nil {
		t.Fatal(err)
	}
	hr := r.(*kmsg.SASLHandshakeResponse)
	if hr.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(hr.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
		t.Errorf("GSSAPI handshake: %+v", hr)
	}
	if _, err := rk.do(kmsg.NewPtrApiVersionsRequest()); err == nil {
		t.Error("the connection stayed open after UNSUPPORTED_SASL_MECHANISM")
	}
	// Before a login a frame over 512 KiB is not read: the connection
	// closes on its size alone.
	rk = dialRawKafka(t, b.Kafka)
	big := binary.BigEndian.AppendUint32(nil, 600<<10)
	big = append(big, 0, 0, 0, 9, 0, 0, 0, 1) // Produce v9, correlation 1
	rk.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := rk.nc.Write(big); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if n, err := rk.nc.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a 600 KiB frame before login: read %d bytes, %v; want the connection closed at once", n, err)
	}
	rk = dialRawKafka(t, b.Kafka)
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = 2, []byte("\x00a\x00b")
	if r, err := rk.do(au); err != nil || r.(*kmsg.SASLAuthenticateResponse).ErrorCode != kerr.IllegalSaslState.Code {
		t.Errorf("SaslAuthenticate without handshake: %v %+v", err, r)
	}
}

// TestSASLScramCredentialAPIs: kadm manages the users' SCRAM credentials
// (Describe/AlterUserScramCredentials) in the same store as the management
// API's users.
func TestSASLScramCredentialAPIs(t *testing.T) {
	b := startBroker(t)
	b.addUser(t, "erin", "e-pass", "")
	adm := b.admin(t)
	ctx := ctxT(t, 20*time.Second)

	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	erin := described["erin"]
	if erin.Err != nil || len(erin.CredInfos) != 2 || erin.CredInfos[0].Iterations != 4096 {
		t.Errorf("erin described as %+v", erin)
	}
	if _, ok := described["guest"]; !ok {
		t.Errorf("the boot user guest has no SCRAM credentials: %+v", described)
	}

	// A user who is not an administrator may neither read nor change
	// credentials; guest (administrator) may, logged in with SCRAM.
	erinAdm := kadm.NewClient(b.client(t, kgo.SASL(saslMech("SCRAM-SHA-512", "erin", "e-pass"))))
	if _, err := erinAdm.DescribeUserSCRAMs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("describe as erin: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	steal := kadm.UpsertSCRAM{User: "guest", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "mine"}
	if res, err := erinAdm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{steal}); !errors.Is(err, kerr.ClusterAuthorizationFailed) && !errors.Is(res["guest"].Err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("alter guest as erin: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, res)
	}
	guestAdm := kadm.NewClient(b.client(t, kgo.SASL(saslMech("SCRAM-SHA-512", "guest", "guest"))))
	if d, err := guestAdm.DescribeUserSCRAMs(ctx, "erin"); err != nil || d["erin"].Err != nil {
		t.Errorf("describe as guest: %v %+v", err, d)
	}

	// Upserting for an unknown user creates it; the login works.
	up := kadm.UpsertSCRAM{User: "frank", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "f-pass"}
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{up})
	if err != nil || res.Error() != nil {
		t.Fatalf("upsert frank: %v %v", err, res.Error())
	}
	b.api(t, "GET", "/api/users/frank", nil, 200)
	// frank may produce once he has a permission in the Kafka vhost (docs/security.md, Authorization).
	b.api(t, "PUT", "/api/permissions/%2F/frank", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, 201)
	cl := b.client(t, kgo.SASL(saslMech("SCRAM-SHA-512", "frank", "f-pass")), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "frank", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce as frank: %v", err)
	}
	// frank has no password hash: PLAIN and HTTP refuse him.
	if err := loginErr(t, b, saslMech("PLAIN", "frank", "f-pass")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("PLAIN as frank: %v", err)
	}
	described, err = adm.DescribeUserSCRAMs(ctx, "frank", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if f := described["frank"]; f.Err != nil || len(f.CredInfos) != 1 || f.CredInfos[0].Iterations != 8192 || f.CredInfos[0].Mechanism != kadm.ScramSha512 {
		t.Errorf("frank described as %+v", f)
	}
	if n := described["nobody"]; !errors.Is(n.Err, kerr.ResourceNotFound) {
		t.Errorf("nobody described as %+v", n)
	}

	// Errors per user.
	// (kadm checks iteration counts itself, so the bad one goes raw.)
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, d := range []struct {
		user string
		mech int8
	}{{"erin", 1}, {"ghost", 1}, {"erin", 7}} {
		del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		del.Name, del.Mechanism = d.user, d.mech
		req.Deletions = append(req.Deletions, del)
	}
	weak := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	weak.Name, weak.Mechanism, weak.Iterations, weak.Salt, weak.SaltedPassword = "weak", 1, 100, []byte("s"), []byte("p")
	req.Upsertions = append(req.Upsertions, weak)
	raw, err := req.RequestWith(ctx, b.client(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int16{}
	for _, r := range raw.Results {
		got[r.User] = r.ErrorCode
	}
	want := map[string]int16{"erin": kerr.UnsupportedSaslMechanism.Code, "ghost": kerr.ResourceNotFound.Code, "weak": kerr.UnacceptableCredential.Code}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alter results %v, want %v", got, want)
	}
	res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "erin", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || res.Error() != nil {
		t.Fatalf("delete erin's SCRAM-SHA-256: %v %v", err, res.Error())
	}
	// erin lost SCRAM-SHA-256, keeps SCRAM-SHA-512.
	if err := loginErr(t, b, saslMech("SCRAM-SHA-256", "erin", "e-pass")); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("SCRAM-SHA-256 after its deletion: %v", err)
	}
	if err := loginErr(t, b, saslMech("SCRAM-SHA-512", "erin", "e-pass")); err != nil {
		t.Errorf("SCRAM-SHA-512 after the other's deletion: %v", err)
	}
}

// nonLoopbackIP is an IPv4 address of this machine that is not loopback,
// "" if none.
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// rawKafka is a bare Kafka connection for requests no client library
// sends on purpose (a request before login, a re-authentication as
// someone else).
type rawKafka struct {
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func dialRawKafka(t testing.TB, addr string) *rawKafka {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawKafka{nc: nc, br: bufio.NewReader(nc)}
}

// do sends req and reads its response; an error means the connection
// closed (or timed out).
func (r *rawKafka) do(req kmsg.Request) (kmsg.Response, error) {
	return r.doWait(req, 10*time.Second)
}

// doWait is do with a deadline of wait.
func (r *rawKafka) doWait(req kmsg.Request, wait time.Duration) (kmsg.Response, error) {
	r.corr++
	r.nc.SetDeadline(time.Now().Add(wait))
	buf := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, r.corr)
	if _, err := r.nc.Write(buf); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(r.br, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.br, body); err != nil {
		return nil, err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != r.corr {
		return nil, fmt.Errorf("bad response header % x", body[:min(len(body), 8)])
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // no header tags
	}
	return resp, resp.ReadFrom(body)
}

// login runs a SaslHandshake and one SaslAuthenticate at version v.
func (r *rawKafka) login(t testing.TB, v int16, mech string, token []byte) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, mech
	if resp, err := r.do(hs); err != nil || resp.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v %+v", err, resp)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.Version, au.SASLAuthBytes = v, token
	resp, err := r.do(au)
	if err != nil {
		t.Fatalf("SaslAuthenticate: %v", err)
	}
	ar := resp.(*kmsg.SASLAuthenticateResponse)
	if ar.ErrorCode != 0 {
		t.Fatalf("SaslAuthenticate: error %d %v", ar.ErrorCode, ar.ErrorMessage)
	}
	return ar
}

// TestSASLPythonClients: kafka-python (SaslHandshake v0 and bare tokens)
// and confluent-kafka (librdkafka, SaslAuthenticate) log in with PLAIN and
// SCRAM-SHA-512, produce and consume, and are refused with a wrong
// password or an unknown user (test/python/sasl_clients.py).
func TestSASLPythonClients(t *testing.T) {
	needPythonModule(t, "kafka")
	needPythonModule(t, "confluent_kafka")
	b := startBroker(t, "--kafka-anonymous=none")
	b.addUser(t, "py", "py-secret", "")
	runPythonScript(t, b, "sasl_clients.py", 120*time.Second)
	s := b.scrape(t)
	for _, m := range []string{"PLAIN", "SCRAM-SHA-512"} {
		if v, _ := s.value("sluice_auth_failures_total", "protocol=kafka", "mechanism="+m); v < 4 {
			t.Errorf("%s failures counted: %v, want at least 4 (two clients, two refusals each)", m, v)
		}
	}
}

// TestSASLKcat: kcat (librdkafka) produces and consumes with SCRAM-SHA-512
// and PLAIN, and a wrong password is refused with the broker's message.
func TestSASLKcat(t *testing.T) {
	needTool(t, kcatPath)
	b := startBroker(t, "--kafka-anonymous=none")
	b.addUser(t, "kc", "kc-secret", "")
	sasl := func(mech, pass string) []string {
		return []string{"-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=" + mech,
			"-X", "sasl.username=kc", "-X", "sasl.password=" + pass}
	}
	for _, mech := range []string{"SCRAM-SHA-512", "PLAIN"} {
		topic := "kcat-" + strings.ToLower(mech)
		b.kcat(t, "one\ntwo\nthree\n", append(sasl(mech, "kc-secret"), "-P", "-t", topic)...).must(t, b, "kcat produce "+mech)
		r := b.kcat(t, "", append(sasl(mech, "kc-secret"), "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\\n")...).must(t, b, "kcat consume "+mech)
		if got := strings.Fields(r.Stdout); strings.Join(got, ",") != "one,two,three" {
			t.Errorf("%s: consumed %q", mech, got)
		}
		r = b.kcat(t, "", append(sasl(mech, "wrong"), "-L", "-m", "2")...)
		if r.Err == nil || !strings.Contains(r.Stderr, "Authentication failed: Invalid username or password") {
			t.Errorf("%s with a wrong password: %v\n%s", mech, r.Err, r.Stderr)
		}
		unknown := append(sasl(mech, "kc-secret"), "-X", "sasl.username=nobody", "-L", "-m", "2")
		r = b.kcat(t, "", unknown...)
		if r.Err == nil || !strings.Contains(r.Stderr, "Authentication failed: Invalid username or password") {
			t.Errorf("%s as an unknown user: %v\n%s", mech, r.Err, r.Stderr)
		}
		if v, _ := b.scrape(t).value("sluice_auth_failures_total", "protocol=kafka", "mechanism="+mech); v < 2 {
			t.Errorf("%s refusals counted: %v, want at least 2", mech, v)
		}
	}
}

// TestSASLUserAddedOffline: `sluice user add --data-dir` on a stopped
// broker derives the SCRAM credentials too.
func TestSASLUserAddedOffline(t *testing.T) {
	b := startBroker(t, "--kafka-anonymous=none")
	b.Stop()
	out, err := exec.Command(sluiceBin, "user", "add", "olive", "--password", "o-pass", "--data-dir", b.DataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("sluice user add --data-dir: %v\n%s", err, out)
	}
	b.Restart()
	for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"} {
		if err := loginErr(t, b, saslMech(m, "olive", "o-pass")); err != nil {
			t.Errorf("%s as olive: %v", m, err)
		}
	}
}

// BenchmarkSASLScramLogin is logins per second through a real server: a
// new TCP connection, SaslHandshake and a SCRAM-SHA-512 exchange
// (franz-go's client, which does the 4096-iteration PBKDF2 each time, as
// every client does on a new connection), then close. Run with
// -bench SASLScramLogin -benchtime 500x; b.N connections one after the
// other, or with -cpu N in N goroutines.
func BenchmarkSASLScramLogin(b *testing.B) {
	br := startBroker(b)
	br.addUser(b, "bench", "bench-pass", "")
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sess, msg, err := saslMech("SCRAM-SHA-512", "bench", "bench-pass").Authenticate(context.Background(), br.Kafka)
			if err != nil {
				b.Error(err)
				return
			}
			rk := dialRawKafka(b, br.Kafka)
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 1, "SCRAM-SHA-512"
			if _, err := rk.do(hs); err != nil {
				b.Error(err)
				return
			}
			for done := false; !done; {
				au := kmsg.NewPtrSASLAuthenticateRequest()
				au.Version, au.SASLAuthBytes = 2, msg
				r, err := rk.do(au)
				if err != nil || r.(*kmsg.SASLAuthenticateResponse).ErrorCode != 0 {
					b.Errorf("login: %v %+v", err, r)
					return
				}
				if done, msg, err = sess.Challenge(r.(*kmsg.SASLAuthenticateResponse).SASLAuthBytes); err != nil {
					b.Error(err)
					return
				}
			}
			rk.nc.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// TestSASLFailedLoginsSlowedNotLockedOut: a burst of wrong passwords from
// one address is answered ever later (ten at once, then one more second
// each), while a correct login from the same address goes through at
// once and the broker keeps serving.
func TestSASLFailedLoginsSlowedNotLockedOut(t *testing.T) {
	b := startBroker(t, "--kafka-anonymous=none", "--log-level=info")
	b.addUser(t, "gina", "g-pass", "")
	const guesses = 14 // the last waits 4s
	var answered atomic.Int32
	var wg sync.WaitGroup
	codes := make(chan int16, guesses)
	for i := range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rk := dialRawKafka(t, b.Kafka)
			rk.nc.SetDeadline(time.Now().Add(40 * time.Second))
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.Version, hs.Mechanism = 1, "PLAIN"
			if _, err := rk.do(hs); err != nil {
				t.Errorf("guess %d: handshake: %v", i, err)
				return
			}
			au := kmsg.NewPtrSASLAuthenticateRequest()
			au.Version, au.SASLAuthBytes = 2, fmt.Appendf(nil, "\x00gina\x00guess-%d", i)
			r, err := rk.doWait(au, 40*time.Second)
			answered.Add(1)
			if err != nil {
				t.Errorf("guess %d: %v", i, err)
				return
			}
			codes <- r.(*kmsg.SASLAuthenticateResponse).ErrorCode
		}()
	}
	// Every guess has been checked (and counted) before its answer waits.
	waitFor(t, 20*time.Second, "all guesses counted", func() bool {
		v, _ := b.scrape(t).value("sluice_auth_failures_total", "protocol=kafka", "mechanism=PLAIN")
		return v >= guesses
	})
	if err := loginErr(t, b, saslMech("PLAIN", "gina", "g-pass")); err != nil {
		t.Fatalf("the right password during the guesses: %v", err)
	}
	if n := answered.Load(); n >= guesses {
		t.Errorf("all %d wrong guesses were answered before the good login: none was delayed", n)
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != kerr.SaslAuthenticationFailed.Code {
			t.Errorf("a wrong guess got error %d", c)
		}
	}
	if !regexp.MustCompile(`"msg":"kafka login refused".*"delay":"[1-9]`).MatchString(b.Logs()) {
		t.Errorf("no delayed refusal logged:\n%s", clip(b.Logs()))
	}
}
