package kafka

import (
	"context"
	"net"
	"slices"
	"testing"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/sluice-mq/sluice/internal/meta"
	"github.com/sluice-mq/sluice/internal/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// authzCoverage says, for every API the broker serves, what its handler
// checks (authz.go). TestEveryAPIIsAuthorized fails when an API is added
// to the registry without an entry here, so that none is served unchecked
// by accident.
var authzCoverage = map[int16]string{
	0:  "WRITE topic (TOPIC_AUTHORIZATION_FAILED; CREATE to auto-create); WRITE transactional id",
	1:  "READ topic",
	2:  "DESCRIBE topic",
	3:  "DESCRIBE topic: unlisted, or TOPIC_AUTHORIZATION_FAILED when named; CREATE to auto-create",
	8:  "READ group, READ topic",
	9:  "DESCRIBE group, DESCRIBE topic (unlisted when all are asked for)",
	10: "DESCRIBE group or transactional id",
	11: "READ group",
	12: "READ group",
	13: "READ group",
	14: "READ group",
	15: "DESCRIBE group",
	16: "DESCRIBE cluster lists all, else the groups it may DESCRIBE",
	17: "none: SaslHandshake is authentication itself",
	18: "none: ApiVersions precedes authentication",
	19: "CREATE cluster or topic",
	20: "DELETE topic",
	21: "DELETE topic",
	22: "WRITE transactional id; IDEMPOTENT_WRITE cluster or WRITE on some topic",
	23: "DESCRIBE topic",
	24: "WRITE transactional id, WRITE topic",
	25: "WRITE transactional id, READ group",
	26: "WRITE transactional id",
	28: "WRITE transactional id, READ group, READ topic",
	29: "DESCRIBE cluster",
	30: "ALTER cluster",
	31: "ALTER cluster",
	32: "DESCRIBE_CONFIGS topic, cluster (broker) or group",
	33: "ALTER_CONFIGS topic, cluster (broker) or group",
	35: "DESCRIBE cluster",
	36: "none: SaslAuthenticate is authentication itself",
	37: "ALTER topic",
	42: "DELETE group",
	43: "ALTER cluster",
	44: "ALTER_CONFIGS topic, cluster (broker) or group",
	45: "ALTER cluster",
	46: "DESCRIBE cluster",
	47: "DELETE group, READ topic",
	48: "DESCRIBE_CONFIGS cluster",
	49: "ALTER_CONFIGS cluster",
	50: "DESCRIBE cluster",
	51: "ALTER cluster",
	60: "DESCRIBE cluster",
	61: "READ topic",
	65: "DESCRIBE transactional id; partitions of topics it may not DESCRIBE left out",
	66: "DESCRIBE transactional id (unlisted)",
	68: "READ group, DESCRIBE subscribed topics",
	69: "DESCRIBE group",
	76: "READ group, DESCRIBE subscribed topics",
	77: "DESCRIBE group",
	78: "READ group, READ topic",
	79: "READ group, READ topic",
	90: "DESCRIBE group, DESCRIBE topic",
	91: "READ group, READ topic",
	92: "DELETE group, READ topic",
}

func TestEveryAPIIsAuthorized(t *testing.T) {
	for _, a := range apis {
		if authzCoverage[a.key] == "" {
			t.Errorf("%s (key %d) has no entry in authzCoverage: say what it checks", kmsg.NameForKey(a.key), a.key)
		}
	}
}

// authzConn is a connection to a server with an authorizer over a real
// metadata store holding: alice, whose permission in the Kafka vhost "/"
// is configure/write/read ^orders\. ; bob, with no permission; root, an
// administrator with no permission. Topics orders.eu and payments exist.
// Set c.user to act as one of them ("" is the anonymous principal).
func authzConn(t testing.TB) (*conn, *meta.Store) {
	t.Helper()
	m, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.PutVhost(meta.Vhost{Name: "/"}))
	must(m.PutUser(meta.User{Name: "alice"}))
	must(m.PutUser(meta.User{Name: "bob"}))
	must(m.PutUser(meta.User{Name: "root", Tags: []string{"administrator"}}))
	must(m.SetPermission(meta.Permission{User: "alice", Vhost: "/", Configure: `^orders\.`, Write: `^orders\.`, Read: `^orders\.`}))
	b, err := broker.New(broker.Options{DataDir: t.TempDir(), AutoCreateTopics: true, Defaults: broker.Defaults{Partitions: 1}}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, name := range []string{"orders.eu", "payments"} {
		if _, err := b.CreateTopic(name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	g := groups.New(groups.Options{ManualTick: true})
	t.Cleanup(g.Close)
	s, err := NewServer(Options{AdvertisedAddr: "broker.test:9092", ClusterID: "c", DataDir: "/data",
		Authorizer: broker.NewAuthorizer(m, "/")}, b, g)
	if err != nil {
		t.Fatal(err)
	}
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	return &conn{s: s, nc: nc, ctx: context.Background(), clientID: "cli", log: s.log}, m
}

func metadataNames(resp *kmsg.MetadataResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		if t.ErrorCode == 0 {
			out = append(out, *t.Topic)
		}
	}
	slices.Sort(out)
	return out
}

// TestAuthorizationMatrix runs requests as principals with and without the
// permission, through the dispatch table, and checks Kafka's codes.
func TestAuthorizationMatrix(t *testing.T) {
	c, _ := authzConn(t)
	as := func(user string) { c.user = user }

	// Metadata: a principal never sees a topic it may not describe.
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"", []string{"orders.eu", "payments"}}, // anonymous: full access
		{"alice", []string{"orders.eu"}},
		{"bob", nil},
		{"root", nil}, // the tag is no permission on topics
	} {
		as(tc.user)
		resp := call[*kmsg.MetadataResponse](t, c, kmsg.NewPtrMetadataRequest(), 12)
		if got := metadataNames(resp); !slices.Equal(got, tc.want) {
			t.Errorf("metadata for %q lists %v, want %v", tc.user, got, tc.want)
		}
	}
	as("alice")
	{
		req := kmsg.NewPtrMetadataRequest()
		for _, name := range []string{"payments", "payments.unknown", "orders.eu"} {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		req.AllowAutoTopicCreation = true
		resp := call[*kmsg.MetadataResponse](t, c, req, 12)
		codes := map[string]int16{}
		for _, rt := range resp.Topics {
			codes[*rt.Topic] = rt.ErrorCode
		}
		if codes["payments"] != kerr.TopicAuthorizationFailed.Code || codes["payments.unknown"] != kerr.TopicAuthorizationFailed.Code || codes["orders.eu"] != 0 {
			t.Errorf("named topics: %v", codes)
		}
		if _, ok := c.s.broker.Topic("payments.unknown"); ok {
			t.Error("metadata auto-created a topic the principal may not create")
		}
	}

	// Per-topic APIs.
	topicCode := func(user, topic string, run func(topic string) int16, want int16) {
		t.Helper()
		as(user)
		if got := run(topic); got != want {
			t.Errorf("%s on %s: code %d, want %d", user, topic, got, want)
		}
	}
	listOffsets := func(topic string) int16 {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return call[*kmsg.ListOffsetsResponse](t, c, req, 8).Topics[0].Partitions[0].ErrorCode
	}
	fetch := func(topic string) int16 {
		req := kmsg.NewPtrFetchRequest()
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return call[*kmsg.FetchResponse](t, c, req, 12).Topics[0].Partitions[0].ErrorCode
	}
	produce := func(topic string) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks = 9, -1
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = producedBatch(t)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := lookup(0).prepare(c, req)()
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	createTopic := func(topic string) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
		req.Topics = append(req.Topics, rt)
		return call[*kmsg.CreateTopicsResponse](t, c, req, 7).Topics[0].ErrorCode
	}
	deleteTopic := func(topic string) int16 {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TopicNames = []string{topic}
		return call[*kmsg.DeleteTopicsResponse](t, c, req, 5).Topics[0].ErrorCode
	}
	describeConfigs := func(topic string) int16 {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		req.Resources = append(req.Resources, rr)
		return call[*kmsg.DescribeConfigsResponse](t, c, req, 4).Resources[0].ErrorCode
	}
	deleteRecords := func(topic string) int16 {
		req := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return call[*kmsg.DeleteRecordsResponse](t, c, req, 2).Topics[0].Partitions[0].ErrorCode
	}
	denied := kerr.TopicAuthorizationFailed.Code
	for _, api := range []struct {
		name string
		run  func(string) int16
	}{{"ListOffsets", listOffsets}, {"Fetch", fetch}, {"Produce", produce}, {"DescribeConfigs", describeConfigs}, {"DeleteRecords", deleteRecords}} {
		t.Run(api.name, func(t *testing.T) {
			topicCode("alice", "orders.eu", api.run, 0)
			topicCode("alice", "payments", api.run, denied)
			topicCode("bob", "orders.eu", api.run, denied)
			topicCode("", "payments", api.run, 0)
		})
	}
	topicCode("alice", "orders.new", createTopic, 0)
	// With CREATE but not DESCRIBE_CONFIGS (an ACL), the answer has no
	// configs and says why, as Kafka's.
	{
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "payments.c", kmsg.ACLResourcePatternTypeLiteral
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationCreate, kmsg.ACLPermissionTypeAllow
		creq := kmsg.NewPtrCreateACLsRequest()
		creq.Creations = append(creq.Creations, cr)
		as("root")
		if r := call[*kmsg.CreateACLsResponse](t, c, creq, 3); r.Results[0].ErrorCode != 0 {
			t.Fatalf("create ACL: %+v", r)
		}
		as("alice")
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "payments.c", 1, 1
		req.Topics = append(req.Topics, rt)
		st := call[*kmsg.CreateTopicsResponse](t, c, req, 7).Topics[0]
		if st.ErrorCode != 0 || st.ConfigErrorCode != kerr.TopicAuthorizationFailed.Code || len(st.Configs) != 0 {
			t.Errorf("create payments.c by ACL: %+v", st)
		}
	}
	topicCode("alice", "payments.new", createTopic, denied)
	topicCode("alice", "payments", deleteTopic, denied)
	topicCode("bob", "orders.new", deleteTopic, denied)
	topicCode("alice", "orders.new", deleteTopic, 0)
	topicCode("alice", "orders.auto", produce, 0) // auto-created: CREATE allowed
	topicCode("alice", "payments.auto", produce, denied)
	if _, ok := c.s.broker.Topic("payments.auto"); ok {
		t.Error("a refused produce auto-created its topic")
	}

	// Groups.
	groupDenied := kerr.GroupAuthorizationFailed.Code
	join := func(group string) int16 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, "consumer", 10000, 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		req.Protocols = append(req.Protocols, p)
		return call[*kmsg.JoinGroupResponse](t, c, req, 5).ErrorCode
	}
	topicCode("alice", "orders.workers", join, kerr.MemberIDRequired.Code)
	topicCode("alice", "billing", join, groupDenied)
	describeGroup := func(group string) int16 {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		return call[*kmsg.DescribeGroupsResponse](t, c, req, 5).Groups[0].ErrorCode
	}
	topicCode("alice", "orders.workers", describeGroup, 0)
	topicCode("alice", "billing", describeGroup, groupDenied)
	commit := func(group string) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = group, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "orders.eu"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return call[*kmsg.OffsetCommitResponse](t, c, req, 8).Topics[0].Partitions[0].ErrorCode
	}
	topicCode("alice", "orders.workers", commit, 0)
	topicCode("alice", "billing", commit, groupDenied)
	findCoordinator := func(group string) int16 {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = group
		return call[*kmsg.FindCoordinatorResponse](t, c, req, 3).ErrorCode
	}
	topicCode("alice", "orders.workers", findCoordinator, 0)
	topicCode("alice", "billing", findCoordinator, groupDenied)
	deleteGroup := func(group string) int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{group}
		return call[*kmsg.DeleteGroupsResponse](t, c, req, 2).Groups[0].ErrorCode
	}
	topicCode("alice", "billing", deleteGroup, groupDenied)
	topicCode("alice", "orders.workers", deleteGroup, 0) // it has offsets: deleted
	as("root")
	if resp := call[*kmsg.ListGroupsResponse](t, c, kmsg.NewPtrListGroupsRequest(), 5); resp.ErrorCode != 0 {
		t.Errorf("list groups as administrator: %d", resp.ErrorCode)
	}

	// Producer ids and transactions.
	initPID := func(txn string) int16 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionTimeoutMillis = 60000
		if txn != "" {
			req.TransactionalID = kmsg.StringPtr(txn)
		}
		return call[*kmsg.InitProducerIDResponse](t, c, req, 4).ErrorCode
	}
	topicCode("alice", "", initPID, 0) // may write somewhere: idempotent
	topicCode("bob", "", initPID, kerr.ClusterAuthorizationFailed.Code)
	topicCode("alice", "orders.tx", initPID, 0)
	topicCode("alice", "payments.tx", initPID, kerr.TransactionalIDAuthorizationFailed.Code)

	// Cluster APIs: the administrator tag.
	describeCluster := func(string) int16 {
		return call[*kmsg.DescribeClusterResponse](t, c, kmsg.NewPtrDescribeClusterRequest(), 0).ErrorCode
	}
	topicCode("alice", "", describeCluster, kerr.ClusterAuthorizationFailed.Code)
	topicCode("root", "", describeCluster, 0)
	topicCode("", "", describeCluster, 0)
}

// ACLs: created by an administrator, refused to others; a DENY overrides
// the vhost permission, an ALLOW adds to it; deleting restores.
func TestAuthorizationACLs(t *testing.T) {
	c, _ := authzConn(t)
	create := func(acls ...kmsg.CreateACLsRequestCreation) []int16 {
		req := kmsg.NewPtrCreateACLsRequest()
		req.Creations = acls
		var codes []int16
		for _, r := range call[*kmsg.CreateACLsResponse](t, c, req, 3).Results {
			codes = append(codes, r.ErrorCode)
		}
		return codes
	}
	creation := func(topic string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) kmsg.CreateACLsRequestCreation {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, topic, kmsg.ACLResourcePatternTypeLiteral
		cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", op, perm
		return cr
	}
	listOffsets := func(topic string) int16 {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rt.Partitions = append(rt.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		return call[*kmsg.ListOffsetsResponse](t, c, req, 8).Topics[0].Partitions[0].ErrorCode
	}

	c.user = "alice"
	if codes := create(creation("payments", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)); !slices.Equal(codes, []int16{kerr.ClusterAuthorizationFailed.Code}) {
		t.Fatalf("alice creating ACLs: %v", codes)
	}
	c.user = "root"
	bad := creation("x", kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAllow)
	codes := create(
		creation("payments", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow),
		creation("orders.eu", kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeDeny),
		bad,
	)
	if !slices.Equal(codes, []int16{0, 0, kerr.InvalidRequest.Code}) {
		t.Fatalf("root creating ACLs: %v", codes)
	}
	c.user = "alice"
	if code := listOffsets("payments"); code != 0 {
		t.Errorf("ALLOW READ (implies DESCRIBE) on payments: list offsets %d", code)
	}
	if code := listOffsets("orders.eu"); code != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("DENY DESCRIBE on orders.eu: list offsets %d", code)
	}
	meta := call[*kmsg.MetadataResponse](t, c, kmsg.NewPtrMetadataRequest(), 12)
	if got := metadataNames(meta); !slices.Equal(got, []string{"payments"}) {
		t.Errorf("metadata after ACLs: %v", got)
	}

	c.user = "root"
	dreq := kmsg.NewPtrDescribeACLsRequest()
	dreq.ResourceType, dreq.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	dreq.Operation, dreq.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dresp := call[*kmsg.DescribeACLsResponse](t, c, dreq, 3)
	if dresp.ErrorCode != 0 || len(dresp.Resources) != 2 {
		t.Fatalf("describe ACLs: %+v", dresp)
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeMatch
	f.ResourceName = kmsg.StringPtr("orders.eu")
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeDeny
	del.Filters = append(del.Filters, f)
	delResp := call[*kmsg.DeleteACLsResponse](t, c, del, 3)
	if r := delResp.Results[0]; r.ErrorCode != 0 || len(r.MatchingACLs) != 1 || r.MatchingACLs[0].ResourceName != "orders.eu" {
		t.Fatalf("delete ACLs: %+v", delResp)
	}
	c.user = "alice"
	if code := listOffsets("orders.eu"); code != 0 {
		t.Errorf("after deleting the DENY: list offsets %d", code)
	}
}

func producedBatch(t *testing.T) []byte {
	t.Helper()
	return storage.BuildBatch(0, 1, [][]byte{[]byte("v")})
}

// FuzzACLRequests runs arbitrary CreateAcls, DescribeAcls and DeleteAcls
// frames through the decoder and the handlers, as an administrator: no
// panic, every creation or filter answered, and whatever is stored valid.
func FuzzACLRequests(f *testing.F) {
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "orders.", kmsg.ACLResourcePatternTypePrefixed
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:alice", "*", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow
	create := kmsg.NewPtrCreateACLsRequest()
	create.Creations = append(create.Creations, cr)
	del := kmsg.NewPtrDeleteACLsRequest()
	df := kmsg.NewDeleteACLsRequestFilter()
	df.ResourceType, df.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeMatch
	df.ResourceName = kmsg.StringPtr("orders.eu")
	df.Operation, df.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, df)
	desc := kmsg.NewPtrDescribeACLsRequest()
	for _, req := range []kmsg.Request{create, del, desc} {
		for _, v := range []int16{0, 1, 3} {
			f.Add(frame(req, v))
		}
	}
	c, m := authzConn(f)
	c.user = "root"
	f.Fuzz(func(t *testing.T, b []byte) {
		_, req, err := decodeRequest(b)
		if err != nil {
			return
		}
		switch r := req.(type) {
		case *kmsg.CreateACLsRequest:
			resp, err := lookup(30).handle(c, r)
			if err != nil || len(resp.(*kmsg.CreateACLsResponse).Results) != len(r.Creations) {
				t.Fatalf("create: %v %+v", err, resp)
			}
		case *kmsg.DeleteACLsRequest:
			resp, err := lookup(31).handle(c, r)
			if err != nil || len(resp.(*kmsg.DeleteACLsResponse).Results) != len(r.Filters) {
				t.Fatalf("delete: %v %+v", err, resp)
			}
		case *kmsg.DescribeACLsRequest:
			if _, err := lookup(29).handle(c, r); err != nil {
				t.Fatal(err)
			}
		default:
			return
		}
		for _, a := range m.ACLs() {
			if err := a.Validate(); err != nil {
				t.Fatalf("stored an invalid ACL %v: %v", a, err)
			}
		}
	})
}

// KIP-430: the authorized operations a client asks for are what the
// principal may do.
func TestAuthorizedOperations(t *testing.T) {
	c, _ := authzConn(t)
	bits := func(ops ...auth.Operation) int32 {
		var b int32
		for _, op := range ops {
			b |= 1 << op
		}
		return b
	}
	c.user = "alice"
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.IncludeTopicAuthorizedOperations = true
	resp := call[*kmsg.MetadataResponse](t, c, mreq, 12)
	if len(resp.Topics) != 1 || resp.Topics[0].AuthorizedOperations != bits(topicOps...) {
		t.Errorf("alice's topics: %+v", resp.Topics)
	}
	mreq = kmsg.NewPtrMetadataRequest()
	resp = call[*kmsg.MetadataResponse](t, c, mreq, 12)
	if resp.Topics[0].AuthorizedOperations != -2147483648 {
		t.Errorf("not asked for: %d", resp.Topics[0].AuthorizedOperations)
	}
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dreq.IncludeClusterAuthorizedOperations = true
	c.user = "root"
	if got := call[*kmsg.DescribeClusterResponse](t, c, dreq, 0).ClusterAuthorizedOperations; got != bits(clusterOps...) {
		t.Errorf("root's cluster operations: %b", got)
	}
	c.user = "alice"
	greq := kmsg.NewPtrDescribeGroupsRequest()
	greq.Groups, greq.IncludeAuthorizedOperations = []string{"orders.g"}, true
	if got := call[*kmsg.DescribeGroupsResponse](t, c, greq, 5).Groups[0].AuthorizedOperations; got != bits(groupOps...) {
		t.Errorf("alice's group operations: %b", got)
	}
	c.user = "bob"
	mreq = kmsg.NewPtrMetadataRequest()
	mreq.Version, mreq.IncludeClusterAuthorizedOperations = 10, true
	if got := call[*kmsg.MetadataResponse](t, c, mreq, 10).AuthorizedOperations; got != 0 {
		t.Errorf("bob's cluster operations: %b", got)
	}
}
