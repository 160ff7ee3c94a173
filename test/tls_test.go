package test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-mq/sluice/internal/tlsconf"
)

// Transport security through real clients: AMQPS (amqp091-go, pika, with
// PLAIN and EXTERNAL), the Kafka TLS listener (franz-go with mutual TLS,
// kcat, confluent-kafka), HTTPS (rabbitmqadmin); refusals of untrusted,
// expired and missing client certificates and of plain-text clients, in
// the log and in /metrics; certificate reload without a restart. Every
// certificate is made for the test by tlsconf.DevCerts, the code behind
// `sluice tls dev-cert`.

// tlsBroker is a broker with its three TLS listeners on.
type tlsBroker struct {
	*broker
	AMQPS, KafkaTLS, HTTPS string
	Certs                  string // the dev-cert directory: CA, server, client (CN guest)
}

func startTLSBroker(t *testing.T, clientAuth string, extra ...string) *tlsBroker {
	t.Helper()
	tb := &tlsBroker{Certs: devCerts(t, "", "guest", 0)}
	tb.AMQPS, tb.KafkaTLS, tb.HTTPS = freePort(t), freePort(t), freePort(t)
	tb.broker = startBroker(t, append([]string{
		"--amqps-addr", tb.AMQPS, "--kafka-tls-addr", tb.KafkaTLS, "--https-addr", tb.HTTPS,
		"--tls-cert", filepath.Join(tb.Certs, tlsconf.DevServerCert),
		"--tls-key", filepath.Join(tb.Certs, tlsconf.DevServerKey),
		"--tls-ca", filepath.Join(tb.Certs, tlsconf.DevCACert),
		"--tls-client-auth", clientAuth,
		"--log-level", "info", // handshake failures and certificate users are logged at info
	}, extra...)...)
	return tb
}

// devCerts makes a dev-cert directory: a new CA, or caDir's; a client
// certificate for cn; validity 0 is the default, negative an expired set.
func devCerts(t *testing.T, caDir, cn string, validity time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	if err := tlsconf.DevCerts(dir, tlsconf.DevOptions{ClientCN: cn, CADir: caDir, Validity: validity}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// clientTLS trusts caDir's CA and, when certDir is set, presents its
// client certificate.
func clientTLS(t *testing.T, caDir, certDir string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(caDir, tlsconf.DevCACert))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if certDir != "" {
		c, err := tls.LoadX509KeyPair(filepath.Join(certDir, tlsconf.DevClientCert), filepath.Join(certDir, tlsconf.DevClientKey))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

func portOf(t testing.TB, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// amqpRoundTrip declares a queue, publishes one message with a confirm and
// gets it back over conn.
func amqpRoundTrip(t *testing.T, conn *amqp.Connection, queue string) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{Body: []byte("over tls")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(ctxT(t, 10*time.Second)); err != nil || !ok {
		t.Fatalf("confirm: %v %v", ok, err)
	}
	var got string
	waitFor(t, 10*time.Second, "the message back", func() bool {
		m, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		got = string(m.Body)
		return ok
	})
	if got != "over tls" {
		t.Fatalf("got %q", got)
	}
}

// mgmtConnection waits for the AMQP connection that logged in with
// mechanism and returns it as /api/connections lists it.
func mgmtConnection(t *testing.T, b *broker, mechanism string) map[string]any {
	t.Helper()
	var found map[string]any
	waitFor(t, 10*time.Second, mechanism+" connection listed", func() bool {
		var conns []map[string]any
		if err := getJSON(b, "/api/connections", &conns); err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			if c["auth_mechanism"] == mechanism {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

func TestTLSAMQPSWithPlainAndExternal(t *testing.T) {
	b := startTLSBroker(t, "request")
	url := "amqps://guest:guest@localhost:" + portOf(t, b.AMQPS) + "/"

	// PLAIN over TLS, no client certificate (request: none is fine).
	conn, err := amqp.DialTLS(url, clientTLS(t, b.Certs, ""))
	if err != nil {
		t.Fatalf("amqps with PLAIN: %v", err)
	}
	amqpRoundTrip(t, conn, "tls-plain")
	c := mgmtConnection(t, b.broker, "PLAIN")
	if c["ssl"] != true || c["ssl_protocol"] == "" || c["user"] != "guest" {
		t.Fatalf("PLAIN connection listed as %v", c)
	}
	conn.Close()

	// EXTERNAL: the certificate's CN (guest) is the user; no password.
	conn, err = amqp.DialTLS_ExternalAuth("amqps://localhost:"+portOf(t, b.AMQPS)+"/", clientTLS(t, b.Certs, b.Certs))
	if err != nil {
		t.Fatalf("amqps with EXTERNAL: %v", err)
	}
	amqpRoundTrip(t, conn, "tls-external")
	c = mgmtConnection(t, b.broker, "EXTERNAL")
	if c["ssl"] != true || c["user"] != "guest" || !strings.Contains(fmt.Sprint(c["peer_cert_subject"]), "CN=guest") {
		t.Fatalf("EXTERNAL connection listed as %v", c)
	}
	conn.Close()

	// A certificate from the trusted CA naming a user that does not
	// exist: the TLS handshake passes, the login does not (403).
	nobody := devCerts(t, b.Certs, "nobody", 0)
	_, err = amqp.DialTLS_ExternalAuth("amqps://localhost:"+portOf(t, b.AMQPS)+"/", clientTLS(t, b.Certs, nobody))
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Fatalf("EXTERNAL as an unknown user: %v, want ACCESS_REFUSED", err)
	}
	// A user that exists but may not use the vhost: the login passes,
	// connection.open does not (530), as for a password login.
	b.api(t, "PUT", "/api/users/carol", map[string]any{"password": "carolpw", "tags": ""}, 201)
	carol := devCerts(t, b.Certs, "carol", 0)
	_, err = amqp.DialTLS_ExternalAuth("amqps://localhost:"+portOf(t, b.AMQPS)+"/", clientTLS(t, b.Certs, carol))
	if !errors.As(err, &ae) || ae.Code != amqp.NotAllowed {
		t.Fatalf("EXTERNAL as a user without access to the vhost: %v, want NOT_ALLOWED", err)
	}
	b.api(t, "PUT", "/api/permissions/%2F/carol", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, 201)
	conn, err = amqp.DialTLS_ExternalAuth("amqps://localhost:"+portOf(t, b.AMQPS)+"/", clientTLS(t, b.Certs, carol))
	if err != nil {
		t.Fatalf("EXTERNAL as carol once she may use the vhost: %v", err)
	}
	amqpRoundTrip(t, conn, "tls-carol")
	conn.Close()
	// EXTERNAL is not offered on the plain listener, nor over TLS
	// without a certificate.
	if _, err := amqp.DialConfig("amqp://"+b.AMQP+"/", amqp.Config{SASL: []amqp.Authentication{&amqp.ExternalAuth{}}}); !errors.Is(err, amqp.ErrSASL) {
		t.Fatalf("EXTERNAL on the plain listener: %v, want ErrSASL", err)
	}
	if _, err := amqp.DialTLS_ExternalAuth("amqps://localhost:"+portOf(t, b.AMQPS)+"/", clientTLS(t, b.Certs, "")); !errors.Is(err, amqp.ErrSASL) {
		t.Fatalf("EXTERNAL over TLS without a certificate: %v, want ErrSASL", err)
	}
	if !strings.Contains(b.Logs(), `"user":"nobody"`) {
		t.Fatal("the refused EXTERNAL login is not in the log")
	}
}

const pikaExternalScript = `
import base64, json, ssl, sys, time, urllib.request, pika
ca, cert, key, port, http = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
params = pika.ConnectionParameters(host="localhost", port=int(port),
    ssl_options=pika.SSLOptions(ctx, "localhost"),
    credentials=pika.credentials.ExternalCredentials())
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.confirm_delivery()
ch.queue_declare("pika-tls", durable=True)
ch.basic_publish("", "pika-tls", b"pika over tls")
for _ in range(100):
    method, props, body = ch.basic_get("pika-tls", auto_ack=True)
    if method:
        print(body.decode())
        break
    time.sleep(0.1)
# How the broker lists this connection, while it is open.
req = urllib.request.Request("http://%s/api/connections" % http,
    headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
for c in json.load(urllib.request.urlopen(req)):
    print("%s %s ssl=%s" % (c["auth_mechanism"], c["user"], c["ssl"]))
conn.close()
`

func TestTLSPikaExternal(t *testing.T) {
	needPythonModule(t, "pika")
	b := startTLSBroker(t, "require")
	r := runTool(t, 60*time.Second, "", python3Path, "-c", pikaExternalScript,
		filepath.Join(b.Certs, tlsconf.DevCACert), filepath.Join(b.Certs, tlsconf.DevClientCert),
		filepath.Join(b.Certs, tlsconf.DevClientKey), portOf(t, b.AMQPS), b.HTTP).must(t, b.broker, "pika EXTERNAL over TLS")
	if got := strings.TrimSpace(r.Stdout); got != "pika over tls\nEXTERNAL guest ssl=True" {
		t.Fatalf("pika printed %q, want its message and its connection (EXTERNAL, guest, ssl)", got)
	}
}

func TestTLSKafkaMutualFranzGo(t *testing.T) {
	b := startTLSBroker(t, "require")
	b.api(t, "PUT", "/api/users/alice", map[string]any{"password": "alicepw", "tags": ""}, 201)
	alice := devCerts(t, b.Certs, "alice", 0)
	b.createTopic(t, "tls-topic", 1, nil)

	cl := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, alice)), kgo.DefaultProduceTopic("tls-topic"))
	// The certificate's user is the principal authorization sees: alice
	// has no permission yet, then may do everything in the Kafka vhost.
	if err := cl.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Value: []byte("too early")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce as alice without permissions: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	b.api(t, "PUT", "/api/permissions/%2F/alice", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, 201)
	if err := cl.ProduceSync(ctxT(t, 15*time.Second), &kgo.Record{Value: []byte("secret")}).FirstErr(); err != nil {
		t.Fatalf("produce over mutual TLS: %v", err)
	}
	cons := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, alice)),
		kgo.ConsumeTopics("tls-topic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := cons.PollFetches(ctxT(t, 15*time.Second))
	if err := fs.Err(); err != nil || fs.NumRecords() != 1 || string(fs.Records()[0].Value) != "secret" {
		t.Fatalf("fetch over mutual TLS: %v, %d records", err, fs.NumRecords())
	}
	// Metadata tells each client the address of the listener it came in
	// by: TLS clients the TLS listener, plain clients the plain one.
	tlsMeta, err := kadm.NewClient(cl).BrokerMetadata(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	plainMeta, err := b.admin(t).BrokerMetadata(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tlsMeta.Brokers[0].Port); got != portOf(t, b.KafkaTLS) {
		t.Fatalf("TLS client told port %s, want the TLS listener's %s", got, portOf(t, b.KafkaTLS))
	}
	if got := fmt.Sprint(plainMeta.Brokers[0].Port); got != portOf(t, b.Kafka) {
		t.Fatalf("plain client told port %s, want the plain listener's %s", got, portOf(t, b.Kafka))
	}
	// The principal is the certificate's CN.
	waitFor(t, 5*time.Second, "the certificate's user in the log", func() bool {
		return strings.Contains(b.Logs(), `"msg":"kafka client authenticated by certificate"`) &&
			strings.Contains(b.Logs(), `"user":"alice"`)
	})

	// A trusted certificate naming no user: the connection is closed.
	nobody := devCerts(t, b.Certs, "nobody", 0)
	bad := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, nobody)),
		kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	if _, err := kadm.NewClient(bad).BrokerMetadata(ctxT(t, 10*time.Second)); err == nil {
		t.Fatal("a certificate naming no user was served")
	}
	waitFor(t, 5*time.Second, "the refusal in the log", func() bool {
		return strings.Contains(b.Logs(), `names user \"nobody\", who does not exist`)
	})
}

const confluentSSLScript = `
import sys
from confluent_kafka import Producer, Consumer
bootstrap, ca = sys.argv[1:3]
conf = {"bootstrap.servers": bootstrap, "security.protocol": "ssl", "ssl.ca.location": ca}
if len(sys.argv) > 3:  # SASL_SSL: mechanism, user, password
    conf.update({"security.protocol": "sasl_ssl", "sasl.mechanisms": sys.argv[3],
                 "sasl.username": sys.argv[4], "sasl.password": sys.argv[5]})
p = Producer(dict(conf))
errors = []
p.produce("cf-tls", b"from confluent", callback=lambda err, msg: err and errors.append(err))
if p.flush(20) != 0 or errors:
    sys.exit("produce failed: %s" % errors)
c = Consumer(dict(conf, **{"group.id": "cf-tls", "auto.offset.reset": "earliest"}))
c.subscribe(["cf-tls"])
got = []
for _ in range(60):
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    got.append(m.value().decode())
    if "from kcat" in got and "from confluent" in got:
        break
c.close()
print(",".join(sorted(got)))
`

func TestTLSKcatAndConfluentOverSSL(t *testing.T) {
	needTool(t, kcatPath)
	needPythonModule(t, "confluent_kafka")
	b := startTLSBroker(t, "none")
	ca := filepath.Join(b.Certs, tlsconf.DevCACert)
	ssl := []string{"-b", b.KafkaTLS, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + ca,
		"-X", "socket.timeout.ms=10000", "-X", "message.timeout.ms=15000", "-m", "10"}
	runTool(t, 30*time.Second, "from kcat\n", kcatPath, append(ssl, "-P", "-t", "cf-tls")...).must(t, b.broker, "kcat produce over ssl")
	r := runTool(t, 60*time.Second, "", python3Path, "-c", confluentSSLScript, b.KafkaTLS, ca).must(t, b.broker, "confluent-kafka over ssl")
	if strings.TrimSpace(r.Stdout) != "from confluent,from kcat" {
		t.Fatalf("confluent-kafka read %q", r.Stdout)
	}
	r = runTool(t, 30*time.Second, "", kcatPath, append(ssl, "-C", "-t", "cf-tls", "-o", "beginning", "-e", "-f", "%s\n")...).must(t, b.broker, "kcat consume over ssl")
	if got := strings.Join(splitLines(r.Stdout), ","); got != "from kcat,from confluent" {
		t.Fatalf("kcat read %q", got)
	}
	// Sluice's own client commands, with --tls-ca.
	r = runTool(t, 30*time.Second, "", sluiceBin, "topic", "list", "--brokers", b.KafkaTLS, "--tls-ca", ca).must(t, b.broker, "sluice topic list over TLS")
	if !strings.Contains(r.Stdout, "cf-tls") {
		t.Fatalf("sluice topic list over TLS:\n%s", r.Stdout)
	}
	// Without the CA, librdkafka refuses the broker's certificate.
	r = runTool(t, 30*time.Second, "", kcatPath, "-b", b.KafkaTLS, "-X", "security.protocol=ssl", "-X", "ssl.ca.location="+filepath.Join(devCerts(t, "", "guest", 0), tlsconf.DevCACert), "-m", "5", "-L")
	if r.Err == nil {
		t.Fatalf("kcat trusted a certificate from another CA:\n%s", r.Stdout)
	}
}

func TestTLSRabbitmqadminOverHTTPS(t *testing.T) {
	requireRabbitmqadmin(t)
	b := startTLSBroker(t, "none")
	b.api(t, "PUT", "/api/queues/%2F/over-https", map[string]any{"durable": true}, 201)
	out := runTool(t, 30*time.Second, "", "rabbitmqadmin", "-H", "localhost", "-P", portOf(t, b.HTTPS),
		"--ssl", "--ssl-ca-cert-file", filepath.Join(b.Certs, tlsconf.DevCACert),
		"-u", "guest", "-p", "guest", "-f", "tsv", "list", "queues", "name").must(t, b.broker, "rabbitmqadmin over https")
	if !strings.Contains(out.Stdout, "over-https") {
		t.Fatalf("rabbitmqadmin list queues over https:\n%s", out.Stdout)
	}
	// Sluice's own admin CLI, trusting the dev CA; without it the
	// certificate is refused.
	ca := filepath.Join(b.Certs, tlsconf.DevCACert)
	https := "https://localhost:" + portOf(t, b.HTTPS)
	cli := runTool(t, 30*time.Second, "", sluiceBin, "queue", "list", "--http", https, "--tls-ca", ca).must(t, b.broker, "sluice queue list over https")
	if !strings.Contains(cli.Stdout, "over-https") {
		t.Fatalf("sluice queue list over https:\n%s", cli.Stdout)
	}
	if r := runTool(t, 30*time.Second, "", sluiceBin, "queue", "list", "--http", https); r.Err == nil || !strings.Contains(r.Stderr, "certificate") {
		t.Fatalf("sluice queue list over https without --tls-ca: err %v, stderr %q; want a certificate error", r.Err, r.Stderr)
	}
	// The overview lists every listener with RabbitMQ's protocol names.
	var ov struct {
		Listeners []struct {
			Protocol string `json:"protocol"`
			Port     int    `json:"port"`
		} `json:"listeners"`
	}
	if err := getJSON(b.broker, "/api/overview", &ov); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range ov.Listeners {
		got[l.Protocol] = fmt.Sprint(l.Port)
	}
	for proto, addr := range map[string]string{"amqp/ssl": b.AMQPS, "kafka/ssl": b.KafkaTLS, "https": b.HTTPS, "amqp": b.AMQP} {
		if got[proto] != portOf(t, addr) {
			t.Errorf("overview listener %s on port %q, want %s (listeners %v)", proto, got[proto], portOf(t, addr), got)
		}
	}
}

func TestTLSRefusalsLoggedAndCounted(t *testing.T) {
	b := startTLSBroker(t, "require")
	untrusted := devCerts(t, "", "guest", 0)             // another CA
	expired := devCerts(t, b.Certs, "guest", -time.Hour) // the trusted CA, expired an hour ago

	// AMQPS: no certificate, an untrusted one, an expired one, plain text.
	for name, cfg := range map[string]*tls.Config{
		"no client certificate":        clientTLS(t, b.Certs, ""),
		"untrusted client certificate": clientTLS(t, b.Certs, untrusted),
		"expired client certificate":   clientTLS(t, b.Certs, expired),
	} {
		if conn, err := amqp.DialTLS("amqps://guest:guest@localhost:"+portOf(t, b.AMQPS)+"/", cfg); err == nil {
			conn.Close()
			t.Errorf("amqps with %s: connected", name)
		}
	}
	if conn, err := amqp.Dial("amqp://guest:guest@" + b.AMQPS + "/"); err == nil {
		conn.Close()
		t.Error("plain AMQP on the AMQPS port: connected")
	}
	// Kafka: an expired certificate, and plain text.
	cl := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, expired)),
		kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	if _, err := kadm.NewClient(cl).BrokerMetadata(ctxT(t, 10*time.Second)); err == nil {
		t.Error("kafka with an expired client certificate: served")
	}
	plain := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	if _, err := kadm.NewClient(plain).BrokerMetadata(ctxT(t, 10*time.Second)); err == nil {
		t.Error("plain-text kafka on the TLS port: served")
	}
	// HTTPS: plain HTTP, and an untrusted client certificate.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + b.HTTPS + "/api/overview"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP on the HTTPS port: served")
		}
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(t, b.Certs, untrusted)}}
	if resp, err := hc.Get("https://localhost:" + portOf(t, b.HTTPS) + "/api/overview"); err == nil {
		resp.Body.Close()
		t.Error("https with an untrusted client certificate: served")
	}
	// A trusted certificate is served on every listener.
	good := clientTLS(t, b.Certs, b.Certs)
	hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: good}}
	req, _ := http.NewRequest("GET", "https://localhost:"+portOf(t, b.HTTPS)+"/api/overview", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("https with a trusted certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("https with a trusted certificate: %s", resp.Status)
	}

	want := map[string]float64{tlsconf.ListenerAMQPS: 4, tlsconf.ListenerKafka: 2, tlsconf.ListenerHTTPS: 2}
	waitFor(t, 10*time.Second, "every refusal counted", func() bool {
		s := b.scrape(t)
		for l, n := range want {
			if v, _ := s.value("sluice_tls_handshake_failures_total", "listener="+l); v < n {
				return false
			}
		}
		return true
	})
	logs := b.Logs()
	for _, w := range []string{"certificate has expired", "certificate signed by unknown authority",
		"didn't provide a certificate", "does not look like a TLS handshake"} {
		if !strings.Contains(logs, w) {
			t.Errorf("no %q handshake failure in the log", w)
		}
	}
}

func TestTLSCertificateReloadWithoutRestart(t *testing.T) {
	b := startTLSBroker(t, "none")
	get := func(caDir string) error {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(t, caDir, ""), DisableKeepAlives: true}}
		resp, err := hc.Get("https://localhost:" + portOf(t, b.HTTPS) + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(b.Certs); err != nil {
		t.Fatal(err)
	}
	// Rotate: a new CA's server certificate and key replace the files
	// (each renamed into place).
	next := devCerts(t, "", "guest", 0)
	for _, f := range []string{tlsconf.DevServerKey, tlsconf.DevServerCert} {
		data, err := os.ReadFile(filepath.Join(next, f))
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(b.Certs, f+".new")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(b.Certs, f)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the new certificate served", func() bool { return get(next) == nil })
	if get(b.Certs) == nil {
		t.Fatal("the old certificate is still served")
	}
	// Every TLS listener serves the new one.
	conn, err := amqp.DialTLS("amqps://guest:guest@localhost:"+portOf(t, b.AMQPS)+"/", clientTLS(t, next, ""))
	if err != nil {
		t.Fatalf("amqps after the reload: %v", err)
	}
	conn.Close()
	cl := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, next, "")))
	if _, err := kadm.NewClient(cl).BrokerMetadata(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("kafka after the reload: %v", err)
	}
	if !strings.Contains(b.Logs(), "TLS certificate reloaded") {
		t.Error("the reload is not in the log")
	}
}

// Clients that connect to a TLS port and never start their handshake
// hold neither the accept loop nor other clients: each waits in a
// handshake of its own, under a deadline.
func TestTLSStalledHandshakesDoNotBlockOthers(t *testing.T) {
	b := startTLSBroker(t, "none")
	for _, addr := range []string{b.KafkaTLS, b.AMQPS, b.HTTPS} {
		for range 100 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
		}
	}
	cl := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, "")))
	if _, err := kadm.NewClient(cl).BrokerMetadata(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("kafka over TLS beside 100 stalled handshakes: %v", err)
	}
	conn, err := amqp.DialTLS("amqps://guest:guest@localhost:"+portOf(t, b.AMQPS)+"/", clientTLS(t, b.Certs, ""))
	if err != nil {
		t.Fatalf("amqps beside 100 stalled handshakes: %v", err)
	}
	conn.Close()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(t, b.Certs, "")}}
	resp, err := hc.Get("https://localhost:" + portOf(t, b.HTTPS) + "/readyz")
	if err != nil {
		t.Fatalf("https beside 100 stalled handshakes: %v", err)
	}
	resp.Body.Close()
}

// An acks=all answer over TLS means what it means over plain TCP: the
// records are on disk. Produced over the TLS listener, the broker killed
// with SIGKILL and restarted (its TLS listeners with it), every
// acknowledged record is read back over TLS.
func TestTLSAcknowledgedRecordsSurviveKill(t *testing.T) {
	b := startTLSBroker(t, "none")
	b.createTopic(t, "tls-durable", 2, nil)
	tlsOpts := []kgo.Opt{kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, ""))}
	prod, err := kgo.NewClient(append(tlsOpts, kgo.DefaultProduceTopic("tls-durable"), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "r%04d", i)})
	}
	if err := prod.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	b.Kill()
	b.Restart()
	cons := b.client(t, append(tlsOpts, kgo.ConsumeTopics("tls-durable"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	seen := map[string]bool{}
	ctx := ctxT(t, 30*time.Second)
	for len(seen) < n && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if len(seen) != n {
		t.Fatalf("read back %d of %d acknowledged records after kill -9", len(seen), n)
	}
}

// SASL over TLS (Kafka's SASL_SSL) on a listener that serves no anonymous
// client: franz-go with SCRAM-SHA-512, kcat with SCRAM-SHA-512 and
// confluent-kafka with PLAIN log in over TLS; a client certificate
// authenticates without SASL; a TLS client with neither is refused.
func TestTLSSASLOverTLS(t *testing.T) {
	needTool(t, kcatPath)
	needPythonModule(t, "confluent_kafka")
	b := startTLSBroker(t, "request", "--kafka-anonymous", "none")
	b.addUser(t, "alice", "alicepw", "")
	ca := filepath.Join(b.Certs, tlsconf.DevCACert)

	cl := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, "")),
		kgo.SASL(saslMech("SCRAM-SHA-512", "alice", "alicepw")))
	if _, err := kadm.NewClient(cl).CreateTopic(ctxT(t, 10*time.Second), 1, 1, nil, "sasl-ssl"); err != nil {
		t.Fatalf("create a topic over SASL_SSL: %v", err)
	}
	produceConsume(t, cl, "sasl-ssl", 5, func(o ...kgo.Opt) *kgo.Client {
		return b.client(t, append([]kgo.Opt{kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, "")),
			kgo.SASL(saslMech("SCRAM-SHA-512", "alice", "alicepw"))}, o...)...)
	})

	saslSSL := []string{"-b", b.KafkaTLS, "-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + ca,
		"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice", "-X", "sasl.password=alicepw",
		"-X", "socket.timeout.ms=10000", "-X", "message.timeout.ms=15000", "-m", "10"}
	runTool(t, 30*time.Second, "from kcat\n", kcatPath, append(saslSSL, "-P", "-t", "cf-tls")...).must(t, b.broker, "kcat produce over sasl_ssl")
	r := runTool(t, 60*time.Second, "", python3Path, "-c", confluentSSLScript, b.KafkaTLS, ca, "PLAIN", "alice", "alicepw").must(t, b.broker, "confluent-kafka over sasl_ssl")
	if strings.TrimSpace(r.Stdout) != "from confluent,from kcat" {
		t.Fatalf("confluent-kafka over sasl_ssl read %q", r.Stdout)
	}

	// A client certificate (CN alice) is a login of its own.
	alice := devCerts(t, b.Certs, "alice", 0)
	certOnly := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, alice)))
	if _, err := kadm.NewClient(certOnly).ListTopics(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("a client certificate without SASL: %v", err)
	}
	// Neither: refused, over TLS as over plain TCP.
	none := b.client(t, kgo.SeedBrokers(b.KafkaTLS), kgo.DialTLSConfig(clientTLS(t, b.Certs, "")),
		kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if _, err := kadm.NewClient(none).ListTopics(ctxT(t, 10*time.Second)); err == nil {
		t.Fatal("a TLS client with neither SASL nor a certificate was served")
	}
}

// TestTLSPythonSASLClients: kafka-python and confluent-kafka log in with
// PLAIN and SCRAM-SHA-512 over SASL_SSL, produce and consume, and are
// refused with a wrong password or an unknown user: the SASL script of
// TestSASLPythonClients, pointed at the TLS listener with the CA to trust.
func TestTLSPythonSASLClients(t *testing.T) {
	needPythonModule(t, "kafka")
	needPythonModule(t, "confluent_kafka")
	b := startTLSBroker(t, "request", "--kafka-anonymous", "none")
	b.addUser(t, "py", "py-secret", "")
	script, err := filepath.Abs(filepath.Join("python", "sasl_clients.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 120*time.Second, "", python3Path, script, b.KafkaTLS, filepath.Join(b.Certs, tlsconf.DevCACert)).
		must(t, b.broker, "sasl_clients.py over SASL_SSL")
	t.Logf("sasl_clients.py over SASL_SSL:\n%s", r.Stdout)
	s := b.scrape(t)
	for _, m := range []string{"PLAIN", "SCRAM-SHA-512"} {
		if v, _ := s.value("sluice_auth_failures_total", "protocol=kafka", "mechanism="+m); v < 4 {
			t.Errorf("%s failures counted: %v, want at least 4 (two clients, two refusals each)", m, v)
		}
	}
}
