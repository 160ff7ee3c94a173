package kafka

// Helpers shared by the group and admin handlers.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestError is a problem a handler finds in a request itself, before
// any core call: the Kafka code it answers with and a message for the
// client's ErrorMessage field.
type requestError struct {
	code *kerr.Error
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func reqErr(code *kerr.Error, format string, args ...any) error {
	return &requestError{code: code, msg: fmt.Sprintf(format, args...)}
}

// codeAndMessage is the ErrorCode and ErrorMessage a response carries for
// err: 0 and nil for success.
func codeAndMessage(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	msg := err.Error()
	var re *requestError
	if errors.As(err, &re) {
		return re.code.Code, &msg
	}
	return errorCode(err), &msg
}

// abandoned reports whether a blocking group call returned because the
// connection's context ended: there is no one left to answer.
func abandoned(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// duplicated returns the names that occur more than once in items. Kafka
// answers INVALID_REQUEST for every entry of a topic named twice in one
// CreateTopics, DeleteTopics or CreatePartitions request.
func duplicated[T any](items []T, name func(T) string) map[string]bool {
	seen := make(map[string]bool, len(items))
	var dup map[string]bool
	for _, it := range items {
		n := name(it)
		if seen[n] {
			if dup == nil {
				dup = make(map[string]bool)
			}
			dup[n] = true
		}
		seen[n] = true
	}
	return dup
}

// onlyThisNode reports whether a manual replica list places a partition
// on this node alone, the one placement a single broker can honour.
func onlyThisNode(replicas []int32) bool {
	return len(replicas) == 1 && replicas[0] == NodeID
}

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// deref is *p, or "" for a null string.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// nullIfEmpty is the nullable form of an optional string such as an
// instance id: null when absent.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// clientHost is the client's address as Kafka reports it in group
// descriptions: "/" and the IP, Java's InetAddress form.
func clientHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		host = a.String()
	}
	return "/" + host
}

// offsetsProtocolType is the protocol type reported for a group without
// one that has committed offsets: a group known only by its offsets (after
// a restart, or used only for simple commits). Kafka tools list such a
// group as a consumer group.
const offsetsProtocolType = "consumer"

// hasOffsets reports whether a group has committed offsets.
func (c *conn) hasOffsets(group string) bool {
	return len(c.s.broker.GroupOffsets(group)) > 0
}

// groupExists reports whether the coordinator holds the group or it has
// committed offsets: the groups DeleteGroups and OffsetDelete act on.
func (c *conn) groupExists(group string) bool {
	if _, ok := c.s.groups.Describe(group); ok {
		return true
	}
	return c.hasOffsets(group)
}

// groupSummaries lists every group: the coordinator's, and those known
// only by committed offsets (as Empty), sorted by name.
func (c *conn) groupSummaries() []groups.GroupSummary {
	byName := make(map[string]groups.GroupSummary)
	for _, g := range c.s.groups.List() {
		byName[g.Group] = g
	}
	for _, name := range c.s.broker.OffsetGroups() {
		g, ok := byName[name]
		if !ok {
			g = groups.GroupSummary{Group: name, State: groups.StateEmpty}
		}
		if g.ProtocolType == "" {
			g.ProtocolType = offsetsProtocolType
		}
		byName[name] = g
	}
	out := make([]groups.GroupSummary, 0, len(byName))
	for _, g := range byName {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// configSource is how a resolved config's source is reported.
func configSource(e broker.ConfigEntry) kmsg.ConfigSource {
	switch e.Source {
	case broker.SourceTopic:
		return kmsg.ConfigSourceDynamicTopicConfig
	case broker.SourceDynamicBroker:
		return kmsg.ConfigSourceDynamicBrokerConfig
	case broker.SourceStaticBroker:
		return kmsg.ConfigSourceStaticBrokerConfig
	}
	return kmsg.ConfigSourceDefaultConfig
}
