package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeCluster, versions 0-1 (flexible): every live broker (this one at
// the address of the listener the client came in on), this one as the
// controller.
// Authorized operations are not computed.

func (c *conn) handleDescribeCluster(req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	for _, n := range c.clusterNodes(c.ctx) {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = n.id, n.host, n.port
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID, resp.ControllerID = clusterID, c.selfNode().id
	resp.EndpointType = req.EndpointType
	return resp
}
