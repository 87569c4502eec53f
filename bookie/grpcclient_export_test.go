package bookie

// TransferLeadership makes the shard's leader hand its leadership to
// another replica, as an election after it stopped answering would.
func (s *Shard) TransferLeadership() error { return s.node.Raft().LeadershipTransfer().Error() }
