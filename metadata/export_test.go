package metadata

// TransferLeadership makes the service's node hand its leadership to
// another voter and returns once it has.
func TransferLeadership(s *Service) error { return s.node.Raft().LeadershipTransfer().Error() }
