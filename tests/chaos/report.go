package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// stall is the longest time one partition went without an
// acknowledgement within a fault's window.
type stall struct {
	d         time.Duration
	partition partKey
	open      bool // no acknowledgement at all until the window ended: d is a lower bound
}

// stallOf returns the longest stall on any partition within the window
// [f.start, end) (end: the next fault): from the fault to the partition's
// first acknowledgement, or between two acknowledgements, clipped at the
// end of the window. A stall still going on when the window ends is open:
// its length is a lower bound, and the next fault's window sees the rest.
func stallOf(h *history, f *fault, end time.Time) stall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var worst stall
	for k, times := range h.mu.ackTimes {
		s := stall{partition: k}
		prev := f.start
		i, _ := slices.BinarySearchFunc(times, f.start, time.Time.Compare)
		for ; i < len(times) && times[i].Before(end); i++ {
			s.d = max(s.d, times[i].Sub(prev))
			prev = times[i]
		}
		// The gap from the last acknowledgement to the next one (or none).
		next := end
		if i < len(times) {
			next = times[i]
		}
		if gap := next.Sub(prev); gap > s.d {
			s.d, s.open = min(gap, end.Sub(prev)), !next.Before(end)
		}
		if s.d > worst.d {
			worst = s
		}
	}
	return worst
}

// stallBound is the bound for a fault (0: none stated).
func stallBound(f *fault) (time.Duration, string) {
	switch {
	case (f.kind == faultKill || f.kind == faultPause) && f.class == targetMetaLeader && f.target.role == "meta":
		return 3 * time.Second, "metadata leader lost: ~3 s"
	case (f.kind == faultKill || f.kind == faultPause) && f.class == targetShardLeader && f.target.role == "bookie":
		return 3 * time.Second, "shard leader lost: appends within ~3 s"
	case f.kind == faultKill && f.class == targetOwner && f.target.role == "broker":
		return brokerLeaseTTL + 2*time.Second, fmt.Sprintf("owner broker killed: lease TTL %v + 2 s", brokerLeaseTTL)
	}
	return 0, ""
}

// result is everything the report shows.
type result struct {
	seed       uint64
	duration   time.Duration
	began      time.Time
	faults     []*fault
	faultsEnd  time.Time
	topics     map[string]topicCounts
	segments   map[string]int
	violations []violation
	sendErrs   []sendErr
	consErrs   map[string][]string
	clientLog  []string
}

// render writes the report.
func (r *result) render(h *history) string {
	var b strings.Builder
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%7.3fs", t.Sub(r.began).Seconds())
	}
	fmt.Fprintf(&b, "\n==== chaos report: seed %d, fault phase %v, began %s ====\n", r.seed, r.duration, r.began.Format(time.RFC3339))
	fmt.Fprintf(&b, "\nfault log (%d faults; times since the fault phase began):\n", len(r.faults))
	stalls := map[string]stall{}
	for i, f := range r.faults {
		end := r.faultsEnd
		if i+1 < len(r.faults) {
			end = r.faults[i+1].start
		}
		s := stallOf(h, f, end)
		rec := "NOT RECOVERED"
		if !f.recovered.IsZero() {
			rec = fmt.Sprintf("healthy +%v", f.recovered.Sub(f.healed).Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "  #%-2d %s  %-9s %-4s %-36s hold %-7v undone %s  %s  longest stall %v on %v%s\n",
			f.n, rel(f.start), f.kind, f.target.name, "("+string(f.class)+": "+f.detail+")", f.hold.Round(time.Millisecond),
			rel(f.healed), rec, s.d.Round(time.Millisecond), s.partition, map[bool]string{true: " (still stalled at the window's end: a lower bound)"}[s.open])
		for _, n := range f.notes {
			fmt.Fprintf(&b, "      %s: %s\n", strings.ToUpper(n.kind), strings.ReplaceAll(n.detail, "\n", "\n      "))
		}
		if s.d > stalls[f.label()].d {
			stalls[f.label()] = s
		}
	}

	fmt.Fprintf(&b, "\nlongest stall per fault type (gap between acknowledgements on a partition, or fault to first ack):\n")
	for _, label := range slices.Sorted(maps.Keys(stalls)) {
		s := stalls[label]
		line := fmt.Sprintf("  %-28s %8v on %v", label, s.d.Round(time.Millisecond), s.partition)
		for _, f := range r.faults {
			if f.label() == label {
				if bound, what := stallBound(f); bound > 0 {
					verdict := "within"
					if s.d > bound {
						verdict = "EXCEEDS"
					}
					line += fmt.Sprintf("  [%s the bound: %s]", verdict, what)
				}
				break
			}
		}
		fmt.Fprintln(&b, line)
	}

	fmt.Fprintf(&b, "\nmessages:\n")
	for _, t := range slices.Sorted(maps.Keys(r.topics)) {
		tc := r.topics[t]
		fmt.Fprintf(&b, "  %-13s stored %d; acknowledged %d, failed %d, unanswered %d (of these %d stored once, %d absent); consumers missing acked: %v\n",
			t, tc.stored, tc.acked, tc.failed, tc.pending, tc.failedStored, tc.failedAbsent, tc.consumedMisses)
	}
	fmt.Fprintf(&b, "  segments per shard: %v\n", r.segments)

	if len(r.sendErrs) > 0 {
		fmt.Fprintf(&b, "\nsend errors (%d), by message:\n", len(r.sendErrs))
		byMsg := map[string][]sendErr{}
		for _, e := range r.sendErrs {
			byMsg[e.producer+": "+e.err] = append(byMsg[e.producer+": "+e.err], e)
		}
		for _, m := range slices.Sorted(maps.Keys(byMsg)) {
			es := byMsg[m]
			fmt.Fprintf(&b, "  %5d x %s (first %s, last %s)\n", len(es), m, rel(es[0].at), rel(es[len(es)-1].at))
		}
	}
	for _, cons := range slices.Sorted(maps.Keys(r.consErrs)) {
		errs := r.consErrs[cons]
		fmt.Fprintf(&b, "\nconsumer %s errors (%d; first 10):\n", cons, len(errs))
		for _, e := range errs[:min(10, len(errs))] {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}

	if len(r.clientLog) > 0 {
		// The duplicate-sequence answers first: each is a batch the client
		// now counts as stored.
		lines := slices.Clone(r.clientLog)
		slices.SortStableFunc(lines, func(a, b string) int {
			return cmp.Compare(b2i(!strings.Contains(a, "duplicate sequence")), b2i(!strings.Contains(b, "duplicate sequence")))
		})
		fmt.Fprintf(&b, "\nKafka clients' warnings (%d; duplicate sequence answers first, then the first 20):\n", len(lines))
		for _, l := range lines[:min(20, len(lines))] {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}

	byKind := map[string][]violation{}
	for _, v := range r.violations {
		byKind[v.kind] = append(byKind[v.kind], v)
	}
	fmt.Fprintf(&b, "\nchecker: lost %d, duplicates %d, offset gaps %d, order violations %d, misplaced %d, replica mismatches %d, crashes %d, not recovered %d, other %d\n",
		len(byKind["lost"]), len(byKind["duplicate"]), len(byKind["gap"]), len(byKind["order"]), len(byKind["misplaced"]),
		len(byKind["replicas"]), len(byKind["crash"]), len(byKind["not-recovered"]),
		len(r.violations)-len(byKind["lost"])-len(byKind["duplicate"])-len(byKind["gap"])-len(byKind["order"])-len(byKind["misplaced"])-len(byKind["replicas"])-len(byKind["crash"])-len(byKind["not-recovered"]))
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		vs := byKind[k]
		fmt.Fprintf(&b, "  %s (%d):\n", k, len(vs))
		for _, v := range vs[:min(10, len(vs))] {
			fmt.Fprintf(&b, "    %s\n", strings.ReplaceAll(v.detail, "\n", "\n    "))
		}
		if len(vs) > 10 {
			fmt.Fprintf(&b, "    ... and %d more\n", len(vs)-10)
		}
	}
	if len(r.violations) == 0 {
		fmt.Fprintf(&b, "  no violation\n")
	}
	return b.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
