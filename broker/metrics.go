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
	}
	if reg != nil {
		reg.MustRegister(m.messagesIn, m.bytesIn, m.messagesOut, m.appendLatency, m.readsCache, m.readsStore, m.partitionsLoaded, m.partitionsIdleUnloaded)
	}
	return m
}
