package metadatatest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
)

// Txn implements metadata.Store.
func (s *Store) Txn(ctx context.Context, req metadata.TxnRequest) (metadata.TxnResponse, error) {
	if err := req.Validate(); err != nil {
		return metadata.TxnResponse{}, err
	}
	if err := s.lock(ctx); err != nil {
		return metadata.TxnResponse{}, err
	}
	defer s.mu.Unlock()
	s.expireLocked()
	resp := metadata.TxnResponse{Succeeded: true}
	for i := range req.Compares {
		c := &req.Compares[i]
		kv, ok := s.mu.kvs[c.Key]
		if !c.Holds(kv, ok) {
			resp.Succeeded = false
			break
		}
	}
	ops := req.Then
	if !resp.Succeeded {
		ops = req.Else
	}
	for _, o := range ops {
		if o.Type == metadata.OpPut && o.Lease != metadata.NoLease && s.mu.leases[o.Lease] == nil {
			return metadata.TxnResponse{}, fmt.Errorf("%w: %d (put of %q)", metadata.ErrLeaseNotFound, o.Lease, o.Key)
		}
	}
	rev := s.mu.rev + 1
	var evs []metadata.Event
	if len(ops) > 0 {
		resp.Results = make([]metadata.OpResult, len(ops))
	}
	for i, o := range ops {
		switch o.Type {
		case metadata.OpPut:
			kv := s.setLocked(rev, o.Key, o.Value, o.Lease)
			evs = append(evs, metadata.Event{Type: metadata.EventPut, KV: kv})
			kv.Value = o.Value
			resp.Results[i].KV = kv
		case metadata.OpDelete:
			resp.Results[i].KV.Key = o.Key
			if _, ok := s.mu.kvs[o.Key]; ok {
				evs = append(evs, s.removeLocked(rev, o.Key))
				resp.Results[i].KV.ModRevision = rev
				resp.Results[i].Deleted = true
			}
		}
	}
	if len(evs) > 0 {
		s.commitLocked(evs)
	}
	resp.Revision = s.mu.rev
	return resp, nil
}

// Grant implements metadata.Store. IDs count up from 1.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (metadata.LeaseID, error) {
	if ttl < time.Millisecond {
		return 0, fmt.Errorf("%w: %v", metadata.ErrInvalidTTL, ttl)
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond) // kept to the ms, like the service
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	s.mu.lastLease++
	id := s.mu.lastLease
	s.mu.leases[id] = &memLease{ttl: ttl, deadline: s.now().Add(ttl), keys: map[string]struct{}{}}
	if !s.mu.expiring {
		s.mu.expiring = true
		s.wg.Go(s.expireLoop)
	}
	return id, nil
}

// KeepAlive implements metadata.Store.
func (s *Store) KeepAlive(ctx context.Context, id metadata.LeaseID) (time.Duration, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	s.expireLocked()
	l := s.mu.leases[id]
	if l == nil {
		return 0, fmt.Errorf("%w: %d", metadata.ErrLeaseNotFound, id)
	}
	l.deadline = s.now().Add(l.ttl)
	return l.ttl, nil
}

// Revoke implements metadata.Store.
func (s *Store) Revoke(ctx context.Context, id metadata.LeaseID) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.expireLocked()
	if s.mu.leases[id] == nil {
		return fmt.Errorf("%w: %d", metadata.ErrLeaseNotFound, id)
	}
	s.revokeLocked(id)
	return nil
}

// revokeLocked deletes the lease and its keys, in one revision if any.
func (s *Store) revokeLocked(id metadata.LeaseID) {
	l := s.mu.leases[id]
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the service deletes them in key order too
	var evs []metadata.Event
	for _, k := range keys {
		evs = append(evs, s.removeLocked(s.mu.rev+1, k))
	}
	delete(s.mu.leases, id)
	if len(evs) > 0 {
		s.commitLocked(evs)
	}
}

// expireLocked revokes every lease whose deadline has passed, in ID order.
func (s *Store) expireLocked() {
	now := s.now()
	var expired []metadata.LeaseID
	for id, l := range s.mu.leases {
		if now.After(l.deadline) {
			expired = append(expired, id)
		}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i] < expired[j] })
	for _, id := range expired {
		s.revokeLocked(id)
	}
}

func (s *Store) expireLoop() {
	t := time.NewTicker(s.leaseTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.done:
			return
		}
		s.mu.Lock()
		if !s.mu.closed {
			s.expireLocked()
		}
		s.mu.Unlock()
	}
}
