package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/magnetar-mq/magnetar/metadata"
	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// How a durable cursor is stored: one Cursor row (the next offset, the
// last Kafka commit's metadata and acks_epoch) plus one AckChunk row per
// 65,536-offset chunk holding individually acknowledged offsets (ackset.go).
// A flush writes the chunks that changed and the cursor row, in one
// metadata transaction when they are few (maxFlushOps), else in several,
// the cursor row last. Chunk rows carry the epoch of the cursor they
// belong to: resetting the acknowledgements (a seek back, a Kafka commit)
// takes a new epoch, so chunk rows left from before are ignored even if
// deleting them fails, and a cursor row written by another broker (with
// epoch 0) has none.

// maxFlushOps bounds the writes of one metadata transaction of a flush.
const maxFlushOps = 64

// loadLocked sets the subscription to the stored cursor c and its chunks.
func (s *subscription) loadLocked(ctx context.Context, c *catalogpb.Cursor) error {
	s.mu.next, s.mu.meta, s.mu.epoch = c.NextOffset, c.CommitMetadata, c.AcksEpoch
	for _, r := range c.Acked { // a row from before chunks
		s.mu.acks.addRange(max(r.Start, s.mu.next), r.End)
		s.mu.dirty = true
	}
	var page catalog.Page
	for {
		l, err := s.p.b.cat.AckChunks.List(ctx, s.cn, page)
		if err != nil {
			return wrapMeta("load acknowledgements", err)
		}
		for _, e := range l.Entries {
			if c.AcksEpoch == 0 || e.Value.Epoch != c.AcksEpoch {
				s.mu.acks.markDirty(e.Name.Chunk) // stale: deleted at the next flush
				s.mu.dirty = true
				continue
			}
			if err := s.mu.acks.load(e.Name.Chunk, e.Value.Bitmap); err != nil {
				return fmt.Errorf("broker: cursor %s: chunk %d: %w", s.cn.Subscription, e.Name.Chunk, err)
			}
		}
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	s.mu.acks.dropBelow(s.mu.next)
	return nil
}

// resetAcksLocked forgets every individual acknowledgement.
func (s *subscription) resetAcksLocked() {
	s.mu.acks.clear()
	s.mu.epoch = newAcksEpoch(s.mu.epoch)
	s.mu.dirty = true
}

// newAcksEpoch returns an epoch above prev and, across restarts, above any
// taken before (it is a time).
func newAcksEpoch(prev int64) int64 { return max(prev+1, time.Now().UnixNano()) }

// flush persists the cursor if it changed since the last flush.
func (s *subscription) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	if !s.mu.dirty || s.mu.deleted || s.nonDurable {
		s.mu.Unlock()
		return nil
	}
	if s.mu.epoch == 0 && len(s.mu.acks.keys) > 0 {
		s.mu.epoch = newAcksEpoch(0)
	}
	c := &catalogpb.Cursor{NextOffset: s.mu.next, CommitMetadata: s.mu.meta, AcksEpoch: s.mu.epoch}
	chunks, err := s.mu.acks.takeDirty()
	if err == nil {
		s.mu.dirty = false
	}
	s.mu.Unlock()
	if err == nil {
		err = s.write(ctx, c, chunks)
	}
	if err != nil {
		s.mu.Lock()
		s.mu.dirty = true
		s.mu.acks.restoreDirty(chunks)
		s.mu.Unlock()
		return wrapMeta("persist cursor", err)
	}
	return nil
}

// write stores the cursor row and the changed chunks (nil: deleted).
func (s *subscription) write(ctx context.Context, c *catalogpb.Cursor, chunks map[int64][]byte) error {
	ops := make([]metadata.Op, 0, min(len(chunks), maxFlushOps)+1)
	for k, data := range chunks {
		name := catalog.AckChunkName{Cursor: s.cn, Chunk: k}
		var op metadata.Op
		if data == nil {
			key, err := s.p.b.cat.AckChunks.Key(name)
			if err != nil {
				return err
			}
			op = metadata.DeleteOp(key)
		} else {
			var err error
			if op, err = s.p.b.cat.AckChunks.PutOp(name, &catalogpb.AckChunk{Epoch: c.AcksEpoch, Bitmap: data}); err != nil {
				return err
			}
		}
		ops = append(ops, op)
		if len(ops) == maxFlushOps {
			if _, err := s.p.b.cat.Store().Txn(ctx, metadata.TxnRequest{Then: ops}); err != nil {
				return err
			}
			ops = ops[:0]
		}
	}
	op, err := s.p.b.cat.Cursors.PutOp(s.cn, c)
	if err != nil {
		return err
	}
	_, err = s.p.b.cat.Store().Txn(ctx, metadata.TxnRequest{Then: append(ops, op)})
	return err
}

// deleteAckChunks deletes every chunk row of a cursor.
func (b *Broker) deleteAckChunks(ctx context.Context, cn catalog.CursorName) error {
	page := catalog.Page{Limit: maxFlushOps}
	for {
		l, err := b.cat.AckChunks.List(ctx, cn, page)
		if err != nil {
			return wrapMeta("delete acknowledgements", err)
		}
		if l.Next == "" && len(l.Entries) == 0 {
			return nil
		}
		page.After = l.Next
		if len(l.Entries) == 0 {
			continue // a page of another cursor's rows (a legacy name with '/')
		}
		ops := make([]metadata.Op, 0, len(l.Entries))
		for _, e := range l.Entries {
			key, err := b.cat.AckChunks.Key(e.Name)
			if err != nil {
				return err
			}
			ops = append(ops, metadata.DeleteOp(key))
		}
		if _, err := b.cat.Store().Txn(ctx, metadata.TxnRequest{Then: ops}); err != nil {
			return wrapMeta("delete acknowledgements", err)
		}
	}
}
