package bookie

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// raft-wal v0.4.0 loses the index of a segment whose tail Raft truncates
// (hashicorp/raft-wal#31, fixed upstream after that release): when a
// follower drops uncommitted entries that conflict with a new leader's
// (raft's "clearing log suffix"), and the cut falls in the open tail
// segment, the WAL marks that segment sealed in its metadata and starts a
// new tail, but never writes the sealed segment's index block. The process
// goes on reading the segment through its in-memory index; the next open
// fails ("sealed segment has no index block"), and Raft panics on it. A
// shard leader killed or paused while it held entries the others lacked
// did exactly that, and could not start again.
//
// repairWAL mends such segments before raft-wal opens the log. A sealed
// segment without an index (IndexStart 0: a real index never starts at
// the file's first byte) is copied, its entries MinIndex..MaxIndex as
// stored (same codec bytes), into a new segment file written through
// raft-wal's own segment writer and sealed by it with an index; then the
// metadata names the new file in the old one's place (one atomic
// CommitState), and the old file is deleted. A crash before the commit
// leaves the old metadata and a new file it does not name: a repair first
// deletes every segment file the metadata does not name (as raft-wal's
// Open would), so it starts again cleanly. A crash after the commit leaves
// the old file unnamed, deleted by raft-wal's Open.
//
// The entries after MaxIndex that the truncation dropped are still in the
// old file; they are not copied, as Raft required.
func repairWAL(meta *walMeta, filer *segment.Filer, dir string, log *slog.Logger) error {
	ps, err := meta.Load(dir)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ps.Segments, unindexed) {
		return nil
	}
	if err := deleteUnnamedSegments(filer, ps); err != nil {
		return fmt.Errorf("bookie: deleting raft log segments left by an interrupted repair: %w", err)
	}
	var replaced, kept []types.SegmentInfo // the files repaired; the log's segments after
	for _, si := range ps.Segments {
		if !unindexed(si) {
			kept = append(kept, si)
			continue
		}
		replaced = append(replaced, si)
		fixed, err := resealSegment(filer, si, ps.NextSegmentID)
		if err != nil {
			return fmt.Errorf("bookie: repairing raft log segment %s: %w", segment.FileName(si), err)
		}
		ps.NextSegmentID++
		kept = append(kept, fixed)
		log.Warn("repaired a raft log segment sealed without an index (a tail truncation; hashicorp/raft-wal#31)",
			"segment", segment.FileName(si), "replacement", segment.FileName(fixed),
			"first_index", fixed.MinIndex, "last_index", fixed.MaxIndex)
	}
	ps.Segments = kept
	if err := meta.CommitState(ps); err != nil {
		return fmt.Errorf("bookie: recording repaired raft log segments: %w", err)
	}
	var errs []error
	for _, si := range replaced {
		errs = append(errs, filer.Delete(si.BaseIndex, si.ID))
	}
	return errors.Join(errs...)
}

// unindexed reports whether a segment is sealed without an index: a real
// index never starts at the file's first byte.
func unindexed(si types.SegmentInfo) bool { return !si.SealTime.IsZero() && si.IndexStart == 0 }

// deleteUnnamedSegments deletes the segment files that ps does not name.
func deleteUnnamedSegments(filer *segment.Filer, ps types.PersistentState) error {
	files, err := filer.List()
	if err != nil {
		return err
	}
	for _, si := range ps.Segments {
		delete(files, si.ID)
	}
	var errs []error
	for id, base := range files {
		errs = append(errs, filer.Delete(base, id))
	}
	return errors.Join(errs...)
}

// resealSegment copies the entries MinIndex..MaxIndex of the segment si
// (sealed in the metadata, without an index) into a new segment with ID id
// and returns its metadata, sealed with an index.
func resealSegment(filer *segment.Filer, si types.SegmentInfo, id uint64) (types.SegmentInfo, error) {
	// Read the old file as a tail: the writer's recovery scans its frames
	// and checks its commits, as it does for an open segment after a crash.
	asTail := si
	asTail.SealTime, asTail.IndexStart, asTail.MaxIndex = time.Time{}, 0, 0
	old, err := filer.RecoverTail(asTail)
	if err != nil {
		return types.SegmentInfo{}, err
	}
	defer old.Close()
	if last := old.LastIndex(); last < si.MaxIndex {
		return types.SegmentInfo{}, fmt.Errorf("%w: it ends at index %d, its metadata at %d", types.ErrCorrupt, last, si.MaxIndex)
	}
	entries := make([]types.LogEntry, 0, si.MaxIndex-si.MinIndex+1)
	for idx := si.MinIndex; idx <= si.MaxIndex; idx++ {
		buf, err := old.GetLog(idx)
		if err != nil {
			return types.SegmentInfo{}, fmt.Errorf("reading index %d: %w", idx, err)
		}
		entries = append(entries, types.LogEntry{Index: idx, Data: append([]byte(nil), buf.Bs...)})
		buf.Close()
	}

	fixed := si
	fixed.ID = id
	fixed.BaseIndex = si.MinIndex
	fixed.IndexStart = 0
	fixed.SealTime = time.Time{}
	// A size limit below the content makes the writer seal the segment,
	// index and all, with the one Append.
	fixed.SizeLimit = 1
	w, err := filer.Create(fixed)
	if err != nil {
		return types.SegmentInfo{}, err
	}
	err = w.Append(entries)
	if err == nil {
		var sealed bool
		sealed, fixed.IndexStart, err = w.Sealed()
		if err == nil && !sealed {
			err = errors.New("the copy was not sealed")
		}
	}
	if err = errors.Join(err, w.Close()); err != nil {
		return types.SegmentInfo{}, errors.Join(err, filer.Delete(fixed.BaseIndex, fixed.ID))
	}
	fixed.SealTime = si.SealTime
	fixed.MaxIndex = si.MaxIndex
	return fixed, nil
}
