package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeCluster, versions 0-1 (flexible): this broker, as controller and
// only broker, at the address of the listener the client came in on.
// Authorized operations are not computed.

func (c *conn) handleDescribeCluster(req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	host, port := c.advertised()
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = nodeID, host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	resp.ClusterID, resp.ControllerID = clusterID, nodeID
	resp.EndpointType = req.EndpointType
	return resp
}
