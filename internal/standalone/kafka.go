package standalone

import (
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/magnetar-mq/magnetar/protocol/kafka"
)

// The Kafka listener of a server: listened on with the other ports (so a
// port in use fails before state is opened), served once the broker
// exists, closed together with the broker so produce requests in flight
// are still answered.

// listenKafka opens the Kafka ports that are enabled (the plain-text one
// and the TLS one).
func (s *Server) listenKafka(cfg Config) error {
	listen := func(addr, what string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		s.closers = append(s.closers, ignoreClosed(ln.Close))
		return ln, nil
	}
	var err error
	if s.kafkaLn, err = listen(cfg.Kafka.ListenAddr, "kafka listener"); err != nil {
		return err
	}
	s.kafkaTLSLn, err = listen(cfg.Kafka.TLSListenAddr, "kafka TLS listener")
	return err
}

// serveKafka starts serving the Kafka protocol on the broker; its
// metrics go to reg.
func (s *Server) serveKafka(cfg Config, reg prometheus.Registerer) error {
	if s.kafkaLn == nil && s.kafkaTLSLn == nil {
		return nil
	}
	srv, err := kafka.NewServer(cfg.Kafka, s.broker, s.log)
	if err != nil {
		return err
	}
	s.kafkaSrv = srv
	reg.MustRegister(srv.Collector())
	if s.kafkaLn != nil {
		s.serving.Go(func() { s.serve("kafka", func() error { return srv.Serve(s.kafkaLn) }) })
	}
	if s.kafkaTLSLn != nil {
		s.serving.Go(func() { s.serve("kafka-tls", func() error { return srv.ServeTLS(s.kafkaTLSLn) }) })
	}
	return nil
}

// closeKafka starts closing the Kafka server (no new requests; pending
// answers get a few seconds) and returns a function that waits for it.
func (s *Server) closeKafka() (wait func() error) {
	if s.kafkaSrv == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- s.kafkaSrv.Close() }() // waited for by wait
	return func() error { return <-done }
}

// KafkaAddr is the address the Kafka protocol listens on ("" when
// disabled).
func (s *Server) KafkaAddr() string { return addrOf(s.kafkaLn) }

// KafkaTLSAddr is the address of the Kafka TLS listener ("" when
// disabled).
func (s *Server) KafkaTLSAddr() string { return addrOf(s.kafkaTLSLn) }

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
