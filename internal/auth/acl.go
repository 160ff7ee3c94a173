package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Kafka ACLs, with the numeric codes of Kafka's protocol (the AclOperation,
// ResourceType, PatternType and AclPermissionType enums), so that a request
// field converts without a table. See the package documentation for how an
// ACL and a vhost permission combine into one decision.

// ResourceType is the kind of resource an ACL governs.
type ResourceType int8

// The resource types. Any is for filters only; DelegationToken and User
// exist in Kafka but Sluice refuses ACLs on them.
const (
	ResourceAny             ResourceType = 1
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

func (r ResourceType) String() string {
	switch r {
	case ResourceAny:
		return "ANY"
	case ResourceTopic:
		return "TOPIC"
	case ResourceGroup:
		return "GROUP"
	case ResourceCluster:
		return "CLUSTER"
	case ResourceTransactionalID:
		return "TRANSACTIONAL_ID"
	case ResourceDelegationToken:
		return "DELEGATION_TOKEN"
	case ResourceUser:
		return "USER"
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(r))
}

// PatternType says how an ACL's resource name matches.
type PatternType int8

// Literal matches the name exactly (or every name, for "*"); Prefixed
// matches names starting with it. Any and Match are for filters only: Any
// takes ACLs of either type, Match takes the ACLs that would apply to the
// filter's name (literal equal, literal "*", or a prefix of it).
const (
	PatternAny      PatternType = 1
	PatternMatch    PatternType = 2
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

func (p PatternType) String() string {
	switch p {
	case PatternAny:
		return "ANY"
	case PatternMatch:
		return "MATCH"
	case PatternLiteral:
		return "LITERAL"
	case PatternPrefixed:
		return "PREFIXED"
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(p))
}

// Operation is what a request does to a resource.
type Operation int8

// The operations, as Kafka numbers them. OpAny is for filters only; OpAll
// in an ACL covers every operation.
const (
	OpAny             Operation = 1
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
)

var opNames = map[Operation]string{
	OpAny: "ANY", OpAll: "ALL", OpRead: "READ", OpWrite: "WRITE", OpCreate: "CREATE",
	OpDelete: "DELETE", OpAlter: "ALTER", OpDescribe: "DESCRIBE", OpClusterAction: "CLUSTER_ACTION",
	OpDescribeConfigs: "DESCRIBE_CONFIGS", OpAlterConfigs: "ALTER_CONFIGS", OpIdempotentWrite: "IDEMPOTENT_WRITE",
}

func (o Operation) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(o))
}

// PermissionType is whether an ACL allows or denies.
type PermissionType int8

// Any is for filters only.
const (
	PermAny   PermissionType = 1
	PermDeny  PermissionType = 2
	PermAllow PermissionType = 3
)

func (p PermissionType) String() string {
	switch p {
	case PermAny:
		return "ANY"
	case PermDeny:
		return "DENY"
	case PermAllow:
		return "ALLOW"
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(p))
}

// ClusterResourceName is the name of the one cluster resource.
const ClusterResourceName = "kafka-cluster"

// Wildcard is the resource name, principal name and host that match every
// name, principal and host.
const Wildcard = "*"

// UserPrincipalPrefix is the principal type Sluice knows: "User:name", or
// "User:*" for every authenticated user.
const UserPrincipalPrefix = "User:"

// ACL is one Kafka access control entry: Principal may (Allow) or may not
// (Deny) perform Operation on the resources ResourceName and PatternType
// select, from Host.
type ACL struct {
	ResourceType ResourceType   `json:"resource_type"`
	ResourceName string         `json:"resource_name"`
	PatternType  PatternType    `json:"pattern_type"`
	Principal    string         `json:"principal"`
	Host         string         `json:"host"`
	Operation    Operation      `json:"operation"`
	Permission   PermissionType `json:"permission"`
}

// ErrInvalidACL is wrapped by Validate's errors.
var ErrInvalidACL = errors.New("invalid ACL")

// Validate reports whether a can be stored: concrete (no ANY, MATCH or
// unknown values), on a supported resource type, with a User principal,
// a non-empty host and resource name, and the cluster resource named
// ClusterResourceName, literally.
func (a ACL) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidACL, fmt.Sprintf(format, args...))
	}
	switch a.ResourceType {
	case ResourceTopic, ResourceGroup, ResourceCluster, ResourceTransactionalID:
	default:
		return bad("resource type %s is not supported", a.ResourceType)
	}
	if a.PatternType != PatternLiteral && a.PatternType != PatternPrefixed {
		return bad("pattern type %s", a.PatternType)
	}
	if _, ok := opNames[a.Operation]; !ok || a.Operation == OpAny {
		return bad("operation %s", a.Operation)
	}
	if a.Permission != PermAllow && a.Permission != PermDeny {
		return bad("permission type %s", a.Permission)
	}
	if a.ResourceName == "" {
		return bad("empty resource name")
	}
	if a.ResourceType == ResourceCluster && (a.ResourceName != ClusterResourceName || a.PatternType != PatternLiteral) {
		return bad("the cluster resource is the literal %q", ClusterResourceName)
	}
	if !strings.HasPrefix(a.Principal, UserPrincipalPrefix) || len(a.Principal) == len(UserPrincipalPrefix) {
		return bad("principal %q is not User:<name>", a.Principal)
	}
	if a.Host == "" {
		return bad("empty host (use %q for any)", Wildcard)
	}
	return nil
}

func (a ACL) String() string {
	return fmt.Sprintf("%s %s %s on %s:%s:%s from %s", a.Principal, a.Permission, a.Operation, a.ResourceType, a.PatternType, a.ResourceName, a.Host)
}

// ACLFilter selects ACLs, as DescribeAcls and DeleteAcls take it. A nil
// name, principal or host matches any; the enums take their Any values.
type ACLFilter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   PermissionType
}

// Matches reports whether a is selected by f, as Kafka's filters select:
// every set field must equal a's, except that PatternMatch selects the
// ACLs that would apply to the filter's name.
func (f ACLFilter) Matches(a ACL) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != a.ResourceType {
		return false
	}
	if f.Operation != OpAny && f.Operation != a.Operation {
		return false
	}
	if f.Permission != PermAny && f.Permission != a.Permission {
		return false
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	switch f.PatternType {
	case PatternAny:
		return f.ResourceName == nil || *f.ResourceName == a.ResourceName
	case PatternMatch:
		if f.ResourceName == nil {
			return true
		}
		return resourceMatches(a, *f.ResourceName)
	default:
		return f.PatternType == a.PatternType && (f.ResourceName == nil || *f.ResourceName == a.ResourceName)
	}
}

// Validate reports whether f is a filter Kafka accepts: known enum
// values (Any included), and not Unknown.
func (f ACLFilter) Validate() error {
	if f.ResourceType < ResourceAny || f.ResourceType > ResourceUser {
		return fmt.Errorf("%w: resource type %s", ErrInvalidACL, f.ResourceType)
	}
	if f.PatternType < PatternAny || f.PatternType > PatternPrefixed {
		return fmt.Errorf("%w: pattern type %s", ErrInvalidACL, f.PatternType)
	}
	if _, ok := opNames[f.Operation]; !ok {
		return fmt.Errorf("%w: operation %s", ErrInvalidACL, f.Operation)
	}
	if f.Permission < PermAny || f.Permission > PermAllow {
		return fmt.Errorf("%w: permission type %s", ErrInvalidACL, f.Permission)
	}
	return nil
}

// resourceMatches reports whether a's resource pattern covers name.
func resourceMatches(a ACL, name string) bool {
	switch a.PatternType {
	case PatternLiteral:
		return a.ResourceName == name || a.ResourceName == Wildcard
	case PatternPrefixed:
		return strings.HasPrefix(name, a.ResourceName)
	}
	return false
}

// covers reports whether an ACL of operation acl applies to a request for
// op. A DENY applies to its own operation and ALL; an ALLOW also to the
// operations its operation implies, as in Kafka: READ, WRITE, DELETE and
// ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS.
func covers(acl, op Operation, perm PermissionType) bool {
	if acl == op || acl == OpAll {
		return true
	}
	if perm != PermAllow {
		return false
	}
	switch op {
	case OpDescribe:
		return acl == OpRead || acl == OpWrite || acl == OpDelete || acl == OpAlter
	case OpDescribeConfigs:
		return acl == OpAlterConfigs
	}
	return false
}

// Request is one authorization question: may User (a user name, not a
// principal string; never "", which callers treat as the anonymous
// principal) perform Op on the resource Type/Name from Host (the client's
// IP address as text)?
type Request struct {
	User string
	Host string
	Type ResourceType
	Name string
	Op   Operation
}

// Grants is what a user holds besides ACLs: its permission in the Kafka
// vhost (HasPermission false if it has none there) and its management
// tags.
type Grants struct {
	HasPermission bool
	Permission    Permission
	Tags          []string
}

// Decision is the outcome of Authorize, with the reason, for logs.
type Decision struct {
	Allowed bool
	Reason  string
}

// Authorize decides r against the stored ACLs and the user's grants: a
// matching DENY ACL refuses; otherwise a matching ALLOW ACL or the vhost
// permission (VhostAccess) allows; otherwise it is refused. It is pure:
// the same inputs give the same answer.
func (c *Checker) Authorize(r Request, acls []ACL, g Grants) Decision {
	allowACL := -1
	for i := range acls {
		a := &acls[i]
		if a.ResourceType != r.Type || !resourceMatches(*a, r.Name) {
			continue
		}
		if name, ok := strings.CutPrefix(a.Principal, UserPrincipalPrefix); !ok || name != r.User && name != Wildcard {
			continue
		}
		if a.Host != Wildcard && a.Host != r.Host {
			continue
		}
		if !covers(a.Operation, r.Op, a.Permission) {
			continue
		}
		if a.Permission == PermDeny {
			return Decision{false, "denied by ACL " + a.String()}
		}
		if allowACL < 0 {
			allowACL = i
		}
	}
	if allowACL >= 0 {
		return Decision{true, "allowed by ACL " + acls[allowACL].String()}
	}
	if c.VhostAllows(r.Type, r.Name, r.Op, g) {
		return Decision{true, "allowed by vhost permission"}
	}
	return Decision{false, ReasonNoGrant}
}

// ReasonNoGrant is the Reason of a refusal that no DENY ACL made.
const ReasonNoGrant = "no ACL or vhost permission allows it"

// Tags that grant cluster operations when no ACL decides.
const (
	TagAdministrator = "administrator"
	TagMonitoring    = "monitoring"
)

func hasTag(tags []string, want ...string) bool {
	for _, t := range tags {
		for _, w := range want {
			if t == w {
				return true
			}
		}
	}
	return false
}

// VhostAccess returns the RabbitMQ permissions that each allow op on a
// resource of type rt in the Kafka vhost (any one suffices), and whether
// the operation is instead governed by tags (cluster operations). This is
// the permission mapping table of docs/security.md.
func VhostAccess(rt ResourceType, op Operation) (accesses []Access, byTag bool) {
	any3 := []Access{AccessConfigure, AccessWrite, AccessRead}
	switch rt {
	case ResourceTopic:
		switch op {
		case OpRead:
			return []Access{AccessRead}, false
		case OpWrite:
			return []Access{AccessWrite}, false
		case OpCreate, OpDelete, OpAlter, OpAlterConfigs:
			return []Access{AccessConfigure}, false
		case OpDescribe, OpDescribeConfigs:
			return any3, false
		}
	case ResourceGroup:
		switch op {
		case OpRead:
			return []Access{AccessRead}, false
		case OpDelete:
			return []Access{AccessConfigure}, false
		case OpDescribe:
			return any3, false
		}
	case ResourceTransactionalID:
		switch op {
		case OpWrite:
			return []Access{AccessWrite}, false
		case OpDescribe:
			return any3, false
		}
	case ResourceCluster:
		return nil, true
	}
	return nil, false
}

// VhostAllows reports whether the grants alone allow op on the resource:
// for topics, groups and transactional ids, the name matched against the
// mapped permission patterns; for the cluster, the administrator tag (and
// for DESCRIBE and DESCRIBE_CONFIGS also the monitoring tag), except that
// IDEMPOTENT_WRITE is allowed to a user who may write somewhere (a
// non-empty write pattern), as Kafka allows it to one with WRITE on any
// topic.
func (c *Checker) VhostAllows(rt ResourceType, name string, op Operation, g Grants) bool {
	accesses, byTag := VhostAccess(rt, op)
	if byTag {
		switch op {
		case OpDescribe, OpDescribeConfigs:
			return hasTag(g.Tags, TagAdministrator, TagMonitoring)
		case OpIdempotentWrite:
			if g.HasPermission && g.Permission.Write != "" {
				return true
			}
		}
		return hasTag(g.Tags, TagAdministrator)
	}
	if !g.HasPermission {
		return false
	}
	for _, a := range accesses {
		if c.Check(g.Permission, a, name) {
			return true
		}
	}
	return false
}

// The names of the enums, as Kafka's tools print them, for the management
// API: ACLNames maps each field's name to its value.
var (
	resourceTypeNames = map[string]ResourceType{"ANY": ResourceAny, "TOPIC": ResourceTopic, "GROUP": ResourceGroup,
		"CLUSTER": ResourceCluster, "TRANSACTIONAL_ID": ResourceTransactionalID, "DELEGATION_TOKEN": ResourceDelegationToken, "USER": ResourceUser}
	patternTypeNames = map[string]PatternType{"ANY": PatternAny, "MATCH": PatternMatch, "LITERAL": PatternLiteral, "PREFIXED": PatternPrefixed}
	permissionNames  = map[string]PermissionType{"ANY": PermAny, "DENY": PermDeny, "ALLOW": PermAllow}
)

// ParseResourceType reads a resource type's name, in any case.
func ParseResourceType(s string) (ResourceType, bool) {
	v, ok := resourceTypeNames[strings.ToUpper(s)]
	return v, ok
}

// ParsePatternType reads a pattern type's name, in any case.
func ParsePatternType(s string) (PatternType, bool) {
	v, ok := patternTypeNames[strings.ToUpper(s)]
	return v, ok
}

// ParseOperation reads an operation's name, in any case.
func ParseOperation(s string) (Operation, bool) {
	for op, name := range opNames {
		if strings.EqualFold(name, s) {
			return op, true
		}
	}
	return 0, false
}

// ParsePermissionType reads ALLOW, DENY or ANY, in any case.
func ParsePermissionType(s string) (PermissionType, bool) {
	v, ok := permissionNames[strings.ToUpper(s)]
	return v, ok
}
