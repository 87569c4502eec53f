package broker

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/bookie"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Opening segments. A loaded partition opens a segment when it first has
// something to append, after a load or a roll, not before: loading and
// reading a partition write nothing to the segment store but the seal that
// fences the previous owner, so they work while the store refuses new
// data. A shard whose disk is full (bookie.ErrDiskFull) refuses the
// creation of a segment and appends, and stores nothing: the producers'
// batches fail with that error, the partition stays loaded and readable,
// and the next batch tries again, so appends resume once there is room.

// openNext opens the segment the next appends go to, starting at the
// partition's next offset: it records the segment in the partition's row,
// in place of a trailing empty sealed segment or of a segment an earlier
// attempt recorded but could not create (so a new attempt is placed
// afresh), and creates it on the shard the router places it on. Run
// goroutine only.
func (p *partition) openNext() error {
	p.mu.Lock()
	pm := proto.Clone(p.mu.meta).(*catalogpb.Partition)
	version, start := p.mu.metaVersion, p.mu.next
	p.mu.Unlock()
	var dropped *catalogpb.Segment // an empty sealed segment, to delete from its shard
	if n := len(pm.Segments); n > 0 {
		last := pm.Segments[n-1]
		switch {
		case last.State == catalogpb.SegmentState_SEGMENT_OPEN: // never created
			pm.Segments = pm.Segments[:n-1]
		case last.State == catalogpb.SegmentState_SEGMENT_SEALED && last.StartOffset == last.EndOffset:
			pm.Segments = pm.Segments[:n-1]
			dropped = last
		}
	}
	id, err := p.b.allocSegmentID(p.ctx)
	if err != nil {
		return err
	}
	shard, err := p.b.shards.Place(p.ctx)
	if err != nil {
		return fmt.Errorf("broker: placing segment %d: %w", id, err)
	}
	seg := &catalogpb.Segment{
		Id:            id,
		State:         catalogpb.SegmentState_SEGMENT_OPEN,
		StartOffset:   start,
		Epoch:         p.epoch,
		Shard:         shard,
		CreatedUnixMs: time.Now().UnixMilli(),
	}
	store, err := p.b.segmentStore(p.ctx, seg)
	if err != nil {
		return err
	}
	// Recorded before it is created: a next owner seals whatever the row
	// names, so a segment created by an owner that then died is fenced.
	pm.Segments = append(pm.Segments, seg)
	if err := p.putMeta(pm, version); err != nil {
		return err
	}
	if dropped != nil {
		p.deleteEmpty(dropped)
	}
	if err := store.CreateSegment(p.ctx, id, start, p.epoch); err != nil {
		return fmt.Errorf("broker: creating segment %d of %s-%d on shard %q: %w", id, p.name, p.index, shard, err)
	}
	p.openStore = store
	p.openedAt = time.Now()
	return nil
}

// deleteEmpty deletes an empty sealed segment the row no longer names
// from its shard; failing that, it is an orphan of no size.
func (p *partition) deleteEmpty(seg *catalogpb.Segment) {
	store, err := p.b.segmentStore(p.ctx, seg)
	if err == nil {
		err = store.DeleteSegment(p.ctx, seg.Id)
	}
	if err != nil && !errors.Is(err, bookie.ErrSegmentNotFound) {
		p.log.Warn("deleting empty segment", "segment", seg.Id, "shard", seg.Shard, "err", err)
	}
}

// refuse answers a group that failed with err. A full shard stored
// nothing, nor did a full metadata service, which refused to record the
// next segment: the group fails with that error and the partition goes
// on. Any other failure may have stored the group, or means the partition
// moved: the partition fails (the caller returns err to run), and the next
// owner's seal decides what was stored.
func (p *partition) refuse(group []*appendReq, err error) error {
	if RefusedFull(err) {
		rerr := fmt.Errorf("broker: appending to %s-%d: %w", p.name, p.index, err)
		for _, r := range group {
			r.err, r.batch = rerr, nil
			close(r.done)
		}
		p.b.metrics.appendsRefusedFull.Add(float64(len(group)))
		if !p.storeFull {
			p.storeFull = true
			p.log.Warn("appends refused until there is room again", "err", err)
		}
		return nil
	}
	rerr := fmt.Errorf("%w: %w", ErrPartitionFailed, err)
	for _, r := range group {
		r.err, r.batch = rerr, nil
		close(r.done)
	}
	return err
}
