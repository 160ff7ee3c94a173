package auth

import (
	"errors"
	"fmt"
	"testing"
)

func acl(rt ResourceType, name string, pt PatternType, principal string, op Operation, perm PermissionType) ACL {
	return ACL{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

func TestAuthorizeACLs(t *testing.T) {
	var c Checker
	noGrants := Grants{}
	tests := []struct {
		name string
		acls []ACL
		req  Request
		want bool
	}{
		{"nothing stored refuses", nil, Request{User: "u", Host: "10.0.0.1", Type: ResourceTopic, Name: "t", Op: OpRead}, false},
		{"literal allow", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpRead}, true},
		{"literal is exact", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "tt", Op: OpRead}, false},
		{"literal wildcard name", []ACL{acl(ResourceTopic, "*", PatternLiteral, "User:u", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "any", Op: OpRead}, true},
		{"prefixed", []ACL{acl(ResourceTopic, "orders.", PatternPrefixed, "User:u", OpWrite, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "orders.eu", Op: OpWrite}, true},
		{"prefixed star is a literal prefix", []ACL{acl(ResourceTopic, "*", PatternPrefixed, "User:u", OpWrite, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "orders", Op: OpWrite}, false},
		{"prefixed misses", []ACL{acl(ResourceTopic, "orders.", PatternPrefixed, "User:u", OpWrite, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "payments", Op: OpWrite}, false},
		{"other principal", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:v", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpRead}, false},
		{"wildcard principal", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:*", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpRead}, true},
		{"other resource type", []ACL{acl(ResourceGroup, "t", PatternLiteral, "User:u", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpRead}, false},
		{"other operation", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpWrite}, false},
		{"ALL allows anything", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpAll, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDelete}, true},
		{"deny wins over allow", []ACL{
			acl(ResourceTopic, "*", PatternLiteral, "User:*", OpAll, PermAllow),
			acl(ResourceTopic, "secret", PatternLiteral, "User:u", OpRead, PermDeny)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "secret", Op: OpRead}, false},
		{"deny of one op leaves others", []ACL{
			acl(ResourceTopic, "*", PatternLiteral, "User:*", OpAll, PermAllow),
			acl(ResourceTopic, "secret", PatternLiteral, "User:u", OpRead, PermDeny)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "secret", Op: OpWrite}, true},
		{"deny ALL denies describe", []ACL{
			acl(ResourceTopic, "s", PatternPrefixed, "User:u", OpAll, PermDeny)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "s1", Op: OpDescribe}, false},
		{"allow READ implies DESCRIBE", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpRead, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDescribe}, true},
		{"allow WRITE implies DESCRIBE", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpWrite, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDescribe}, true},
		{"allow DELETE implies DESCRIBE", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpDelete, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDescribe}, true},
		{"allow ALTER implies DESCRIBE", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpAlter, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDescribe}, true},
		{"allow CREATE does not imply DESCRIBE", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpCreate, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDescribe}, false},
		{"allow ALTER_CONFIGS implies DESCRIBE_CONFIGS", []ACL{acl(ResourceTopic, "t", PatternLiteral, "User:u", OpAlterConfigs, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDescribeConfigs}, true},
		{"deny READ does not deny DESCRIBE", []ACL{
			acl(ResourceTopic, "t", PatternLiteral, "User:u", OpRead, PermDeny),
			acl(ResourceTopic, "t", PatternLiteral, "User:u", OpDescribe, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTopic, Name: "t", Op: OpDescribe}, true},
		{"host must match", []ACL{{ResourceType: ResourceTopic, ResourceName: "t", PatternType: PatternLiteral, Principal: "User:u", Host: "10.0.0.2", Operation: OpRead, Permission: PermAllow}},
			Request{User: "u", Host: "10.0.0.1", Type: ResourceTopic, Name: "t", Op: OpRead}, false},
		{"host matches", []ACL{{ResourceType: ResourceTopic, ResourceName: "t", PatternType: PatternLiteral, Principal: "User:u", Host: "10.0.0.1", Operation: OpRead, Permission: PermAllow}},
			Request{User: "u", Host: "10.0.0.1", Type: ResourceTopic, Name: "t", Op: OpRead}, true},
		{"cluster ACL", []ACL{acl(ResourceCluster, ClusterResourceName, PatternLiteral, "User:u", OpAlter, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceCluster, Name: ClusterResourceName, Op: OpAlter}, true},
		{"transactional id", []ACL{acl(ResourceTransactionalID, "tx-", PatternPrefixed, "User:u", OpWrite, PermAllow)},
			Request{User: "u", Host: "h", Type: ResourceTransactionalID, Name: "tx-1", Op: OpWrite}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := c.Authorize(tt.req, tt.acls, noGrants)
			if d.Allowed != tt.want {
				t.Fatalf("Authorize = %v (%s), want %v", d.Allowed, d.Reason, tt.want)
			}
			if d.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

// TestAuthorizeVhostPermission is the permission mapping table of
// docs/security.md, for a user whose three patterns are "^orders\.".
func TestAuthorizeVhostPermission(t *testing.T) {
	var c Checker
	orders := Grants{HasPermission: true, Permission: Permission{Configure: `^orders\.`, Write: `^orders\.`, Read: `^orders\.`}}
	readOnly := Grants{HasPermission: true, Permission: Permission{Configure: "", Write: "", Read: ".*"}}
	admin := Grants{Tags: []string{"administrator"}}
	monitor := Grants{Tags: []string{"monitoring"}}
	tests := []struct {
		g    Grants
		rt   ResourceType
		name string
		op   Operation
		want bool
	}{
		{orders, ResourceTopic, "orders.eu", OpWrite, true},
		{orders, ResourceTopic, "orders.eu", OpRead, true},
		{orders, ResourceTopic, "orders.eu", OpCreate, true},
		{orders, ResourceTopic, "orders.eu", OpDelete, true},
		{orders, ResourceTopic, "orders.eu", OpDescribe, true},
		{orders, ResourceTopic, "orders.eu", OpDescribeConfigs, true},
		{orders, ResourceTopic, "orders.eu", OpAlterConfigs, true},
		{orders, ResourceTopic, "payments", OpWrite, false},
		{orders, ResourceTopic, "payments", OpRead, false},
		{orders, ResourceTopic, "payments", OpDescribe, false},
		{orders, ResourceTopic, "payments", OpCreate, false},
		{orders, ResourceGroup, "orders.workers", OpRead, true},
		{orders, ResourceGroup, "orders.workers", OpDescribe, true},
		{orders, ResourceGroup, "orders.workers", OpDelete, true},
		{orders, ResourceGroup, "billing", OpRead, false},
		{orders, ResourceTransactionalID, "orders.tx", OpWrite, true},
		{orders, ResourceTransactionalID, "other.tx", OpWrite, false},
		{orders, ResourceCluster, ClusterResourceName, OpIdempotentWrite, true},
		{orders, ResourceCluster, ClusterResourceName, OpDescribe, false},
		{orders, ResourceCluster, ClusterResourceName, OpAlter, false},
		{orders, ResourceCluster, ClusterResourceName, OpCreate, false},
		{readOnly, ResourceTopic, "x", OpRead, true},
		{readOnly, ResourceTopic, "x", OpDescribe, true},
		{readOnly, ResourceTopic, "x", OpWrite, false},
		{readOnly, ResourceTopic, "x", OpCreate, false},
		{readOnly, ResourceCluster, ClusterResourceName, OpIdempotentWrite, false},
		{readOnly, ResourceGroup, "g", OpRead, true},
		{readOnly, ResourceGroup, "g", OpDelete, false},
		{admin, ResourceCluster, ClusterResourceName, OpAlter, true},
		{admin, ResourceCluster, ClusterResourceName, OpDescribe, true},
		{admin, ResourceCluster, ClusterResourceName, OpIdempotentWrite, true},
		{admin, ResourceTopic, "x", OpRead, false}, // the tag is no vhost permission
		{monitor, ResourceCluster, ClusterResourceName, OpDescribe, true},
		{monitor, ResourceCluster, ClusterResourceName, OpDescribeConfigs, true},
		{monitor, ResourceCluster, ClusterResourceName, OpAlter, false},
		{Grants{}, ResourceTopic, "x", OpDescribe, false},
	}
	for _, tt := range tests {
		d := c.Authorize(Request{User: "u", Host: "h", Type: tt.rt, Name: tt.name, Op: tt.op}, nil, tt.g)
		if d.Allowed != tt.want {
			t.Errorf("%+v %s %s %s: allowed %v (%s), want %v", tt.g, tt.rt, tt.name, tt.op, d.Allowed, d.Reason, tt.want)
		}
	}
	// A DENY ACL overrides the permission; an ALLOW ACL adds to it.
	deny := []ACL{acl(ResourceTopic, "orders.secret", PatternLiteral, "User:u", OpRead, PermDeny)}
	if d := c.Authorize(Request{User: "u", Host: "h", Type: ResourceTopic, Name: "orders.secret", Op: OpRead}, deny, orders); d.Allowed {
		t.Error("a DENY ACL did not override the vhost permission")
	}
	allow := []ACL{acl(ResourceTopic, "payments", PatternLiteral, "User:u", OpRead, PermAllow)}
	if d := c.Authorize(Request{User: "u", Host: "h", Type: ResourceTopic, Name: "payments", Op: OpRead}, allow, orders); !d.Allowed {
		t.Error("an ALLOW ACL did not add to the vhost permission")
	}
}

func TestACLValidate(t *testing.T) {
	good := acl(ResourceTopic, "t", PatternLiteral, "User:u", OpRead, PermAllow)
	if err := good.Validate(); err != nil {
		t.Fatalf("valid ACL refused: %v", err)
	}
	bad := []func(*ACL){
		func(a *ACL) { a.ResourceType = ResourceAny },
		func(a *ACL) { a.ResourceType = ResourceDelegationToken },
		func(a *ACL) { a.ResourceType = 0 },
		func(a *ACL) { a.PatternType = PatternMatch },
		func(a *ACL) { a.PatternType = PatternAny },
		func(a *ACL) { a.Operation = OpAny },
		func(a *ACL) { a.Operation = 13 },
		func(a *ACL) { a.Permission = PermAny },
		func(a *ACL) { a.ResourceName = "" },
		func(a *ACL) { a.Principal = "u" },
		func(a *ACL) { a.Principal = "User:" },
		func(a *ACL) { a.Principal = "Group:x" },
		func(a *ACL) { a.Host = "" },
		func(a *ACL) { a.ResourceType = ResourceCluster },
		func(a *ACL) {
			a.ResourceType, a.ResourceName, a.PatternType = ResourceCluster, ClusterResourceName, PatternPrefixed
		},
	}
	for i, f := range bad {
		a := good
		f(&a)
		if err := a.Validate(); !errors.Is(err, ErrInvalidACL) {
			t.Errorf("case %d (%v): Validate = %v, want ErrInvalidACL", i, a, err)
		}
	}
}

func TestACLFilterMatches(t *testing.T) {
	s := func(v string) *string { return &v }
	lit := acl(ResourceTopic, "orders", PatternLiteral, "User:u", OpRead, PermAllow)
	star := acl(ResourceTopic, "*", PatternLiteral, "User:u", OpRead, PermAllow)
	pre := acl(ResourceTopic, "ord", PatternPrefixed, "User:u", OpRead, PermDeny)
	all := ACLFilter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermAny}
	tests := []struct {
		f    ACLFilter
		a    ACL
		want bool
	}{
		{all, lit, true},
		{all, pre, true},
		{ACLFilter{ResourceType: ResourceGroup, PatternType: PatternAny, Operation: OpAny, Permission: PermAny}, lit, false},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternLiteral, Operation: OpAny, Permission: PermAny}, lit, true},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternLiteral, Operation: OpAny, Permission: PermAny}, star, false},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternPrefixed, Operation: OpAny, Permission: PermAny}, lit, false},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternAny, Operation: OpAny, Permission: PermAny}, lit, true},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternAny, Operation: OpAny, Permission: PermAny}, pre, false},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternMatch, Operation: OpAny, Permission: PermAny}, lit, true},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternMatch, Operation: OpAny, Permission: PermAny}, star, true},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternMatch, Operation: OpAny, Permission: PermAny}, pre, true},
		{ACLFilter{ResourceType: ResourceTopic, ResourceName: s("other"), PatternType: PatternMatch, Operation: OpAny, Permission: PermAny}, pre, false},
		{ACLFilter{ResourceType: ResourceAny, PatternType: PatternAny, Principal: s("User:v"), Operation: OpAny, Permission: PermAny}, lit, false},
		{ACLFilter{ResourceType: ResourceAny, PatternType: PatternAny, Host: s("*"), Operation: OpAny, Permission: PermAny}, lit, true},
		{ACLFilter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpWrite, Permission: PermAny}, lit, false},
		{ACLFilter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermDeny}, lit, false},
		{ACLFilter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermDeny}, pre, true},
	}
	for i, tt := range tests {
		if got := tt.f.Matches(tt.a); got != tt.want {
			t.Errorf("case %d: filter %+v on %v = %v, want %v", i, tt.f, tt.a, got, tt.want)
		}
	}
	if err := (ACLFilter{}).Validate(); err == nil {
		t.Error("a zero (UNKNOWN) filter validated")
	}
	if err := all.Validate(); err != nil {
		t.Errorf("the match-all filter: %v", err)
	}
}

func TestACLNamesRoundTrip(t *testing.T) {
	for rt := ResourceAny; rt <= ResourceUser; rt++ {
		if got, ok := ParseResourceType(rt.String()); !ok || got != rt {
			t.Errorf("resource type %s: %v %v", rt, got, ok)
		}
	}
	for pt := PatternAny; pt <= PatternPrefixed; pt++ {
		if got, ok := ParsePatternType(pt.String()); !ok || got != pt {
			t.Errorf("pattern type %s: %v %v", pt, got, ok)
		}
	}
	for op := OpAny; op <= OpIdempotentWrite; op++ {
		if got, ok := ParseOperation(op.String()); !ok || got != op {
			t.Errorf("operation %s: %v %v", op, got, ok)
		}
	}
	for p := PermAny; p <= PermAllow; p++ {
		if got, ok := ParsePermissionType(p.String()); !ok || got != p {
			t.Errorf("permission %s: %v %v", p, got, ok)
		}
	}
	if _, ok := ParseOperation("describe_configs"); !ok {
		t.Error("lower case refused")
	}
	if _, ok := ParseOperation("frobnicate"); ok {
		t.Error("unknown operation accepted")
	}
}

// BenchmarkAuthorize is one decision against 100 ACLs of other users and
// topics, falling through to a regular-expression permission: the cost a
// request pays per resource it names.
func BenchmarkAuthorize(b *testing.B) {
	var c Checker
	var acls []ACL
	for i := range 100 {
		acls = append(acls, acl(ResourceTopic, fmt.Sprintf("topic-%d", i), PatternPrefixed, fmt.Sprintf("User:u%d", i), OpRead, PermAllow))
	}
	g := Grants{HasPermission: true, Permission: Permission{Configure: `^orders\.`, Write: `^orders\.`, Read: `^orders\.`}}
	r := Request{User: "alice", Host: "10.0.0.1", Type: ResourceTopic, Name: "orders.eu", Op: OpWrite}
	b.ReportAllocs()
	for b.Loop() {
		if !c.Authorize(r, acls, g).Allowed {
			b.Fatal("refused")
		}
	}
}
