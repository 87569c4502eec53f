package kafka

import "github.com/prometheus/client_golang/prometheus"

// What the listener's limits refused, for /metrics: one counter per kind,
// read from Server.stats when scraped.
var (
	limitEventsDesc = prometheus.NewDesc("magnetar_kafka_limit_events_total",
		"Kafka connections and requests the listener's limits acted on, by kind.", []string{"kind"}, nil)
	saslFailuresDesc = prometheus.NewDesc("magnetar_kafka_sasl_failures_total",
		"Failed Kafka SASL logins, and logins refused unchecked while their source was backing off (throttled).", []string{"outcome"}, nil)
)

// Collector returns the server's metrics collector.
func (s *Server) Collector() prometheus.Collector { return (*collector)(s) }

type collector Server

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- limitEventsDesc
	ch <- saslFailuresDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := &c.stats
	for kind, n := range map[string]int64{
		"accept_error":          st.acceptErrors.Load(),
		"connection_refused":    st.refusedConns.Load(),
		"idle_closed":           st.idleClosed.Load(),
		"read_timeout":          st.readTimeouts.Load(),
		"frame_too_large_login": st.framesBeforeAuth.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(limitEventsDesc, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(saslFailuresDesc, prometheus.CounterValue, float64(st.authFailures.Load()), "failed")
	ch <- prometheus.MustNewConstMetric(saslFailuresDesc, prometheus.CounterValue, float64(st.authThrottled.Load()), "throttled")
}
