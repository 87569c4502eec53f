package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups, versions 0-5 (5 is flexible). A group with members is
// described from the coordinator (member metadata and assignments once
// Stable); one with only committed offsets is Empty; an unknown one is
// Dead, as on Kafka. Authorized operations are not computed.

func (c *conn) handleDescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = name
		switch v, live := c.s.co.view(name); {
		case name == "":
			rg.ErrorCode = kerr.InvalidGroupID.Code
		case live:
			rg.State, rg.ProtocolType, rg.Protocol, rg.Members = v.state, v.protocolType, v.protocol, v.members
		default:
			info, ok, err := c.s.b.Group(ctx, name)
			switch {
			case err != nil:
				rg.ErrorCode = kafkaCode(err)
			case ok:
				rg.State, rg.ProtocolType = stateEmpty, info.ProtocolType
			default:
				rg.State = stateDead
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}
