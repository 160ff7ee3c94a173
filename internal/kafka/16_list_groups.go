package kafka

// ListGroups, versions 0-5.
//
// Lists every group the coordinator holds, and every group known only by
// its committed offsets (as Empty). A group without a protocol type that
// has committed offsets is listed with protocol type "consumer", so that
// Kafka tools show it among consumer groups. StatesFilter (v4+) matches
// state names case-insensitively, as Kafka does. Every group is a classic
// group: GroupType (v5+) is "classic", and TypesFilter (v5+) matches group
// types ("classic", "consumer", "share"), not protocol types, so a filter
// without "classic" lists nothing.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const classicGroupType = "classic"

func handleListGroups(c *conn, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, equalFold(classicGroupType)) {
		return resp, nil
	}
	for _, g := range c.groupSummaries() {
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, equalFold(g.State)) {
			continue
		}
		sg := kmsg.NewListGroupsResponseGroup()
		sg.Group, sg.ProtocolType, sg.GroupState, sg.GroupType = g.Group, g.ProtocolType, g.State, classicGroupType
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func equalFold(s string) func(string) bool {
	return func(t string) bool { return strings.EqualFold(s, t) }
}
