package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// versionRange is what the server advertises for one API key.
type versionRange struct {
	key      int16
	min, max int16
}

// supported lists every API key served and its versions, in key order.
// Only what is implemented is here: ApiVersions advertises exactly this
// list, and a request outside it closes the connection.
var supported = []versionRange{
	{int16(kmsg.Produce), 0, 9}, // 0-2 are answered with UNSUPPORTED_VERSION (librdkafka probes 0)
	{int16(kmsg.Fetch), 4, 12},
	{int16(kmsg.ListOffsets), 1, 7},
	{int16(kmsg.Metadata), 0, 12},
	{int16(kmsg.OffsetCommit), 2, 8},
	{int16(kmsg.OffsetFetch), 1, 8},
	{int16(kmsg.FindCoordinator), 0, 4},
	{int16(kmsg.JoinGroup), 0, 9},
	{int16(kmsg.Heartbeat), 0, 4},
	{int16(kmsg.LeaveGroup), 0, 5},
	{int16(kmsg.SyncGroup), 0, 5},
	{int16(kmsg.DescribeGroups), 0, 5},
	{int16(kmsg.ListGroups), 0, 4},
	{int16(kmsg.SASLHandshake), 0, 1},
	{int16(kmsg.ApiVersions), 0, 3},
	{int16(kmsg.CreateTopics), 0, 7},
	{int16(kmsg.DeleteTopics), 0, 6},
	{int16(kmsg.InitProducerID), 0, 4},
	{int16(kmsg.DescribeACLs), 0, 3},
	{int16(kmsg.CreateACLs), 0, 3},
	{int16(kmsg.DeleteACLs), 0, 3},
	{int16(kmsg.DescribeConfigs), 0, 4},
	{int16(kmsg.CreatePartitions), 0, 3},
	{int16(kmsg.SASLAuthenticate), 0, 2},
	{int16(kmsg.DeleteGroups), 0, 2},
	{int16(kmsg.DescribeCluster), 0, 1},
}

// versionsOf returns the advertised range of key.
func versionsOf(key int16) (versionRange, bool) {
	for _, v := range supported {
		if v.key == key {
			return v, true
		}
	}
	return versionRange{}, false
}
