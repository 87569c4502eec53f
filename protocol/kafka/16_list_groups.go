package kafka

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups, versions 0-4 (3 and later are flexible; 4 filters by
// state). It lists the groups with members and those with committed
// offsets only (Empty).

func (c *conn) handleListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	wanted := func(state string) bool {
		return len(req.StatesFilter) == 0 || slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, state) })
	}
	seen := make(map[string]bool)
	for _, v := range c.s.co.live() {
		seen[v.name] = true
		if wanted(v.state) {
			resp.Groups = append(resp.Groups, listedGroup(v.name, v.protocolType, v.state))
		}
	}
	rows, err := c.s.b.Groups(ctx)
	if err != nil {
		resp.ErrorCode = kafkaCode(err)
		return resp
	}
	for _, g := range rows {
		if !seen[g.Name] && wanted(stateEmpty) {
			resp.Groups = append(resp.Groups, listedGroup(g.Name, g.ProtocolType, stateEmpty))
		}
	}
	return resp
}

func listedGroup(name, protocolType, state string) kmsg.ListGroupsResponseGroup {
	g := kmsg.NewListGroupsResponseGroup()
	g.Group, g.ProtocolType, g.GroupState = name, protocolType, state
	return g
}
