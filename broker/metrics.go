package broker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messagesIn       prometheus.Counter
	bytesIn          prometheus.Counter
	messagesOut      prometheus.Counter
	appendLatency    prometheus.Histogram
	readsCache       prometheus.Counter
	readsStore       prometheus.Counter
	partitionsLoaded prometheus.Gauge

	partitionsIdleUnloaded prometheus.Counter
	// Batches refused because the segment store's disk is full.
	appendsRefusedFull prometheus.Counter

	// Policies acting on stored data (retention.go, backlog.go).
	segmentsDeleted  prometheus.Counter
	messagesExpired  prometheus.Counter
	messagesEvicted  prometheus.Counter
	publishesHeld    prometheus.Counter
	publishesRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_messages_in_total", Help: "Messages appended by producers.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_bytes_in_total", Help: "Record batch bytes appended by producers.",
		}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_messages_out_total", Help: "Messages dispatched to consumers.",
		}),
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "magnetar_broker_append_seconds",
			Help:    "Time to append a group of batches to the segment store.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		readsCache: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_reads_cache_total", Help: "Reads served from the tail cache.",
		}),
		readsStore: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_reads_store_total", Help: "Reads served from the segment store.",
		}),
		partitionsLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "magnetar_broker_partitions_loaded", Help: "Partitions this broker owns and has loaded.",
		}),
		partitionsIdleUnloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_partitions_idle_unloaded_total", Help: "Partitions unloaded after their idle timeout.",
		}),
		appendsRefusedFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_batches_refused_disk_full_total", Help: "Produced batches refused because the segment store's shard has too little free disk space.",
		}),
		segmentsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_retention_segments_deleted_total", Help: "Sealed segments deleted by retention.",
		}),
		messagesExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_ttl_messages_expired_total", Help: "Messages acknowledged on a subscription because their TTL passed.",
		}),
		messagesEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_backlog_messages_evicted_total", Help: "Messages dropped from a subscription's backlog by consumer_backlog_eviction.",
		}),
		publishesHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_backlog_publishes_held_total", Help: "Publishes held because a backlog quota was reached (producer_request_hold).",
		}),
		publishesRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "magnetar_broker_backlog_publishes_refused_total", Help: "Publishes failed because a backlog quota was reached (producer_exception).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.messagesIn, m.bytesIn, m.messagesOut, m.appendLatency, m.readsCache, m.readsStore, m.partitionsLoaded, m.partitionsIdleUnloaded,
			m.appendsRefusedFull, m.segmentsDeleted, m.messagesExpired, m.messagesEvicted, m.publishesHeld, m.publishesRefused)
	}
	return m
}
