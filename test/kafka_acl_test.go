package test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Kafka ACLs: managed with kadm (CreateAcls, DescribeAcls, DeleteAcls) and
// the management API (/api/acls), the same stored rules, durable across a
// kill -9. The anonymous principal (a loopback client without SASL) may
// manage them: it has full access (docs/security.md, "Authorization").

// aclStrings describes every stored ACL through kadm, one sorted line each.
func aclStrings(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	res, err := adm.DescribeACLs(ctxT(t, 10*time.Second), kadm.NewACLs().AnyResource().
		Allow().Deny().AllowHosts().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("describe ACLs: %v", r.Err)
		}
		for _, d := range r.Described {
			out = append(out, strings.Join([]string{d.Principal, d.Host, d.Type.String(), d.Name, d.Pattern.String(), d.Operation.String(), d.Permission.String()}, " "))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestKafkaACLsManagedAndDurable(t *testing.T) {
	b := startBroker(t)
	adm := b.admin(t)
	ctx := ctxT(t, 20*time.Second)

	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("orders.").
		ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite, kadm.OpRead))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create: %v %s", r.Err, r.ErrMessage)
		}
	}
	if res, err = adm.CreateACLs(ctx, kadm.NewACLs().Deny("User:alice").Topics("orders.secret").Operations(kadm.OpRead)); err != nil || res[0].Err != nil {
		t.Fatalf("create deny: %v %v", err, res)
	}
	// A delegation token ACL is refused, with Kafka's INVALID_REQUEST.
	res, err = adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").DelegationTokens("tok").Operations(kadm.OpDescribe))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.InvalidRequest) {
		t.Fatalf("delegation token ACL: %v %+v", err, res)
	}

	// The management API shows them and adds to them.
	type aclJSON struct {
		ResourceType string `json:"resource_type"`
		ResourceName string `json:"resource_name"`
		PatternType  string `json:"pattern_type"`
		Principal    string `json:"principal"`
		Host         string `json:"host"`
		Operation    string `json:"operation"`
		Permission   string `json:"permission"`
	}
	listed := decodeJSON[[]aclJSON](t, b.api(t, "GET", "/api/acls", nil, http.StatusOK))
	if len(listed) != 3 {
		t.Fatalf("/api/acls lists %+v", listed)
	}
	group := aclJSON{ResourceType: "group", ResourceName: "orders.", PatternType: "prefixed", Principal: "User:alice", Operation: "read"}
	b.api(t, "POST", "/api/acls", group, http.StatusCreated)
	b.api(t, "POST", "/api/acls", aclJSON{ResourceType: "topic", ResourceName: "x", Principal: "alice", Operation: "read"}, http.StatusBadRequest)
	b.api(t, "POST", "/api/acls", aclJSON{ResourceType: "topic", ResourceName: "x", Principal: "User:alice", Operation: "any"}, http.StatusBadRequest)
	if code, _ := b.httpDo(t, "", "", "GET", "/api/acls", nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous GET /api/acls: %d", code)
	}

	want := []string{
		"User:alice * GROUP orders. PREFIXED READ ALLOW",
		"User:alice * TOPIC orders. PREFIXED READ ALLOW",
		"User:alice * TOPIC orders. PREFIXED WRITE ALLOW",
		"User:alice * TOPIC orders.secret LITERAL READ DENY",
	}
	if got := aclStrings(t, adm); !slices.Equal(got, want) {
		t.Fatalf("ACLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Acknowledged means durable.
	b.Kill()
	b.Restart()
	adm = b.admin(t)
	if got := aclStrings(t, adm); !slices.Equal(got, want) {
		t.Fatalf("after kill -9:\n%s", strings.Join(got, "\n"))
	}

	// Delete: a MATCH filter through kadm, an exact ACL through HTTP.
	ctx = ctxT(t, 20*time.Second)
	dres, err := adm.DeleteACLs(ctx, kadm.NewACLs().Deny("User:alice").DenyHosts().Topics("orders.secret").
		ResourcePatternType(kadm.ACLPatternMatch).Operations(kadm.OpAny))
	if err != nil || len(dres) != 1 || dres[0].Err != nil || len(dres[0].Deleted) != 1 {
		t.Fatalf("delete deny: %v %+v", err, dres)
	}
	b.api(t, "DELETE", "/api/acls", group, http.StatusNoContent)
	b.api(t, "DELETE", "/api/acls", group, http.StatusNotFound)
	want = want[1:3]
	if got := aclStrings(t, adm); !slices.Equal(got, want) {
		t.Fatalf("after deletes:\n%s", strings.Join(got, "\n"))
	}

	// The CLI, through the same API.
	mustAdmin(t, b, "acl", "add", "--principal", "User:bob", "--operation", "describe", "--cluster")
	if out := mustAdmin(t, b, "acl", "list"); !strings.Contains(out, "User:bob") || !strings.Contains(out, "kafka-cluster") {
		t.Fatalf("acl list:\n%s", out)
	}
	if got := aclStrings(t, adm); !slices.Contains(got, "User:bob * CLUSTER kafka-cluster LITERAL DESCRIBE ALLOW") {
		t.Fatalf("after acl add:\n%s", strings.Join(got, "\n"))
	}
	mustAdmin(t, b, "acl", "delete", "--principal", "User:bob", "--operation", "describe", "--cluster")
	if got := aclStrings(t, adm); !slices.Equal(got, want) {
		t.Fatalf("after acl delete:\n%s", strings.Join(got, "\n"))
	}
}

// TestKafkaAuthorizationMatrix: principals authenticated with SASL PLAIN
// (users made with the management API, as for AMQP) get exactly what their
// permission in the Kafka vhost and the ACLs allow, with Kafka's codes, and
// never see a topic they may not describe.
func TestKafkaAuthorizationMatrix(t *testing.T) {
	b := startBroker(t, "--log-level", "info") // refusals are logged at info
	adm := b.admin(t)
	// alice: configure/write/read ^orders\. in the Kafka vhost; bob: none.
	b.api(t, "PUT", "/api/users/alice", map[string]string{"password": "alice-pw", "tags": ""}, http.StatusCreated)
	b.api(t, "PUT", "/api/users/bob", map[string]string{"password": "bob-pw", "tags": ""}, http.StatusCreated)
	b.api(t, "PUT", "/api/permissions/%2F/alice", map[string]string{"configure": `^orders\.`, "write": `^orders\.`, "read": `^orders\.`}, http.StatusCreated)
	b.createTopic(t, "orders.eu", 1, nil)
	b.createTopic(t, "payments", 1, nil)

	as := func(user, pass string, opts ...kgo.Opt) *kgo.Client {
		opts = append([]kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())}, opts...)
		return b.client(t, opts...)
	}
	alice, bob := as("alice", "alice-pw"), as("bob", "bob-pw")
	aliceAdm, bobAdm := kadm.NewClient(alice), kadm.NewClient(bob)
	ctx := ctxT(t, 60*time.Second)

	// Metadata lists only what each may describe.
	for _, tc := range []struct {
		adm  *kadm.Client
		want []string
	}{{aliceAdm, []string{"orders.eu"}}, {bobAdm, nil}, {adm, []string{"orders.eu", "payments"}}} {
		topics, err := tc.adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := topics.Names(); !slices.Equal(got, tc.want) {
			t.Errorf("topics listed: %v, want %v", got, tc.want)
		}
	}

	// Produce: WRITE on the topic.
	produce := func(cl *kgo.Client, topic string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	if err := produce(alice, "orders.eu"); err != nil {
		t.Errorf("alice producing to orders.eu: %v", err)
	}
	if err := produce(alice, "payments"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice producing to payments: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := produce(bob, "orders.eu"); !errors.Is(err, kerr.TopicAuthorizationFailed) && !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("bob producing: %v, want an authorization failure", err)
	}

	// Create and delete topics: configure.
	if r, err := aliceAdm.CreateTopic(ctx, 1, 1, nil, "orders.new"); err != nil || r.Err != nil {
		t.Errorf("alice creating orders.new: %v %v", err, r.Err)
	}
	if r, _ := aliceAdm.CreateTopic(ctx, 1, 1, nil, "payments.new"); !errors.Is(r.Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice creating payments.new: %v", r.Err)
	}
	if r, _ := aliceAdm.DeleteTopic(ctx, "payments"); !errors.Is(r.Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice deleting payments: %v", r.Err)
	}
	if r, err := aliceAdm.DeleteTopic(ctx, "orders.new"); err != nil || r.Err != nil {
		t.Errorf("alice deleting orders.new: %v %v", err, r.Err)
	}

	// Consume in a group: READ on the group and the topic.
	consume := func(group, topic string) error {
		cl := as("alice", "alice-pw", kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		for {
			fs := cl.PollFetches(pctx)
			if err := fs.Err0(); err != nil {
				return err
			}
			if fs.NumRecords() > 0 {
				return cl.CommitUncommittedOffsets(pctx)
			}
		}
	}
	if err := consume("orders.workers", "orders.eu"); err != nil {
		t.Errorf("alice consuming orders.eu in orders.workers: %v", err)
	}
	if err := consume("billing", "orders.eu"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Errorf("alice consuming in billing: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}

	// Groups alice may not describe are not listed to her.
	if gs, err := aliceAdm.ListGroups(ctx); err != nil || slices.Contains(gs.Groups(), "billing") {
		t.Errorf("alice's groups: %v %v", gs.Groups(), err)
	}

	// Cluster operations: the administrator tag.
	dres, err := aliceAdm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err == nil && len(dres) > 0 {
		err = dres[0].Err
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("alice describing ACLs: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}

	// A DENY ACL overrides the permission: alice loses READ on orders.eu.
	if res, err := adm.CreateACLs(ctx, kadm.NewACLs().Deny("User:alice").Topics("orders.eu").Operations(kadm.OpRead)); err != nil || res[0].Err != nil {
		t.Fatalf("create deny: %v %v", err, res)
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.SessionEpoch, req.MaxBytes = 12, -1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders.eu"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("fetch after DENY READ: code %d", code)
	}
	if !strings.Contains(b.Logs(), "kafka request refused") {
		t.Error("refusals are not logged")
	}

	// The same through confluent-kafka and kafka-python.
	needPythonModule(t, "confluent_kafka")
	needPythonModule(t, "kafka")
	path, err := filepath.Abs(filepath.Join("python", "authz_sasl.py"))
	if err != nil {
		t.Fatal(err)
	}
	r := runTool(t, 90*time.Second, "", python3Path, path, b.Kafka, "alice", "alice-pw").must(t, b, "authz_sasl.py")
	t.Logf("authz_sasl.py:\n%s", r.Stdout)
}

// TestAMQPHonoursKafkaDenyACLs: a Kafka DENY ACL on a topic also refuses
// the AMQP view of the same data in the Kafka vhost (consuming its
// partition stream queue, publishing to its super stream exchange), with
// AMQP's ACCESS_REFUSED, while the user's other permissions still hold.
func TestAMQPHonoursKafkaDenyACLs(t *testing.T) {
	b := startBroker(t)
	b.createTopic(t, "secret", 1, nil)
	b.createTopic(t, "open", 1, nil)
	b.api(t, "PUT", "/api/users/carol", map[string]string{"password": "carol-pw", "tags": ""}, http.StatusCreated)
	b.api(t, "PUT", "/api/permissions/%2F/carol", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusCreated)
	for _, op := range []string{"read", "write"} {
		b.api(t, "POST", "/api/acls", map[string]string{"resource_type": "topic", "resource_name": "secret",
			"principal": "User:carol", "operation": op, "permission": "deny"}, http.StatusCreated)
	}

	conn, err := amqp.Dial("amqp://carol:carol-pw@" + b.AMQP + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	consume := func(queue string) error {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if err := ch.Qos(10, 0, false); err != nil {
			t.Fatal(err)
		}
		_, err = ch.Consume(queue, "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
		return err
	}
	if err := consume("open-0"); err != nil {
		t.Fatalf("consuming open-0: %v", err)
	}
	if err := consume("secret-0"); amqpErrCode(err) != amqp.AccessRefused {
		t.Fatalf("consuming secret-0 under a DENY READ: %v, want 403", err)
	}
	publish := func(exchange string) error {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctxT(t, 10*time.Second), exchange, "k", false, false, amqp.Publishing{Body: []byte("x")})
		if err != nil {
			return err
		}
		select {
		case e := <-closed:
			return e
		case <-dc.Done():
			if dc.Acked() {
				return nil
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no confirm and no close")
		}
		select { // nacked or closed: the channel's close says why
		case e := <-closed:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("nack without a channel close")
		}
		return nil
	}
	if err := publish("open"); err != nil {
		t.Fatalf("publishing to open: %v", err)
	}
	if err := publish("secret"); amqpErrCode(err) != amqp.AccessRefused {
		t.Fatalf("publishing to secret under a DENY WRITE: %v, want 403", err)
	}
	// guest, whom no ACL names, is unaffected.
	g, err := amqp.Dial("amqp://guest:guest@" + b.AMQP + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gch, _ := g.Channel()
	gch.Qos(10, 0, false)
	if _, err := gch.Consume("secret-0", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"}); err != nil {
		t.Fatalf("guest consuming secret-0: %v", err)
	}
}

// TestConsoleKafkaACLs: the console's Kafka ACLs page, in a real browser
// (test/browser/acls.spec.mjs), shows the stored ACLs and adds one; the
// addition is checked here through Kafka's DescribeAcls.
func TestConsoleKafkaACLs(t *testing.T) {
	node := requireBrowser(t)
	b := startBroker(t)
	b.api(t, "POST", "/api/acls", map[string]string{"resource_type": "topic", "resource_name": "secrets",
		"principal": "User:mallory", "operation": "read", "permission": "deny"}, http.StatusCreated)
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "browser/acls.spec.mjs")
	cmd.Env = append(os.Environ(), "SLUICE_URL=http://"+b.HTTP+"/")
	out, err := cmd.CombinedOutput()
	t.Logf("acls.spec.mjs:\n%s", out)
	if err != nil || !strings.Contains(string(out), "0 failed") {
		t.Fatalf("browser checks failed: %v", err)
	}
	want := []string{
		"User:alice * TOPIC orders. PREFIXED WRITE ALLOW",
		"User:mallory * TOPIC secrets LITERAL READ DENY",
	}
	if got := aclStrings(t, b.admin(t)); !slices.Equal(got, want) {
		t.Fatalf("ACLs after the console:\n%s", strings.Join(got, "\n"))
	}
}
