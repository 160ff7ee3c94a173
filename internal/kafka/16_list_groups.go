package kafka

// ListGroups, versions 0-5.
//
// Lists every group the coordinator holds, and every group known only by
// its committed offsets (as Empty). A group without a protocol type that
// has committed offsets is listed with protocol type "consumer", so that
// Kafka tools show it among consumer groups. StatesFilter (v4+) matches
// state names case-insensitively, as Kafka does. GroupType (v5+) is
// "consumer" for groups of the consumer group protocol (KIP-848) and
// "classic" for the others (including those known only by their offsets);
// TypesFilter (v5+) matches group types, case-insensitively, not protocol
// types. Share groups (KIP-932) are listed with type and protocol type
// "share", in state Empty or Stable.

import (
	"slices"
	"strings"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker/groups"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListGroups(c *conn, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	all := c.groupSummaries()
	for _, g := range c.s.broker.Shares().List() {
		all = append(all, groups.GroupSummary{Group: g.Name, State: g.State, ProtocolType: shareGroupType, Type: shareGroupType})
	}
	everyGroup := c.may(auth.ResourceCluster, auth.ClusterResourceName, auth.OpDescribe)
	for _, g := range all {
		if !everyGroup && !c.may(auth.ResourceGroup, g.Group, auth.OpDescribe) {
			continue // as Kafka: DESCRIBE on the cluster lists all, else those it may describe
		}
		if g.Type == "" {
			g.Type = groups.TypeClassic
		}
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, equalFold(g.State)) {
			continue
		}
		if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, equalFold(g.Type)) {
			continue
		}
		sg := kmsg.NewListGroupsResponseGroup()
		sg.Group, sg.ProtocolType, sg.GroupState, sg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func equalFold(s string) func(string) bool {
	return func(t string) bool { return strings.EqualFold(s, t) }
}
