package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups, versions 0-2 (2 is flexible). Only a group without
// members can be deleted (NON_EMPTY_GROUP otherwise); deleting it deletes
// its committed offsets, i.e. the subscriptions named after it.

func (c *conn) handleDeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = name
		rg.ErrorCode = c.deleteGroup(ctx, name)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (c *conn) deleteGroup(ctx context.Context, name string) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	if !c.s.co.forget(name) {
		return kerr.NonEmptyGroup.Code
	}
	_, ok, err := c.s.b.Group(ctx, name)
	switch {
	case err != nil:
		return kafkaCode(err)
	case !ok:
		return kerr.GroupIDNotFound.Code
	}
	return kafkaCode(c.s.b.DeleteGroup(ctx, name))
}
