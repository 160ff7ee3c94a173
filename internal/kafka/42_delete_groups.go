package kafka

// DeleteGroups, versions 0-2.
//
// Deletes an Empty group from the coordinator together with all its
// committed offsets. A group with members is NON_EMPTY_GROUP and keeps
// its offsets; a group neither held by the coordinator nor with committed
// offsets is GROUP_ID_NOT_FOUND. A share group (KIP-932) is deleted with
// its share-partitions' state, once it has no members.

import (
	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(c *conn, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		sg := kmsg.NewDeleteGroupsResponseGroup()
		sg.Group = name
		sg.ErrorCode = c.deleteGroup(name)
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func (c *conn) deleteGroup(name string) int16 {
	if !c.allowedGroup(name, auth.OpDelete) {
		return errGroupAuth.Code
	}
	if !c.coordinates(coordinatorGroup, name) {
		return kerr.NotCoordinator.Code
	}
	if !c.groupExists(name) && c.s.broker.Shares().Exists(name) {
		code, _ := shareCodeAndMessage(c.s.broker.Shares().Delete(name))
		return code
	}
	if !c.groupExists(name) {
		return kerr.GroupIDNotFound.Code
	}
	if err := c.s.groups.Delete(name); err != nil {
		return errorCode(err)
	}
	return coordinatorErrorCode(c.s.broker.DeleteGroupOffsets(name, nil))
}
