package standalone

import (
	"fmt"
	"net"

	"github.com/magnetar-mq/magnetar/protocol/kafka"
)

// The Kafka listener of a server: listened on with the other ports (so a
// port in use fails before state is opened), served once the broker
// exists, closed together with the broker so produce requests in flight
// are still answered.

// listenKafka opens the Kafka port unless it is disabled (empty address).
func (s *Server) listenKafka(cfg Config) error {
	if cfg.Kafka.ListenAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Kafka.ListenAddr)
	if err != nil {
		return fmt.Errorf("kafka listener: %w", err)
	}
	s.kafkaLn = ln
	s.closers = append(s.closers, ignoreClosed(ln.Close))
	return nil
}

// serveKafka starts serving the Kafka protocol on the broker.
func (s *Server) serveKafka(cfg Config) error {
	if s.kafkaLn == nil {
		return nil
	}
	srv, err := kafka.NewServer(cfg.Kafka, s.broker, s.log)
	if err != nil {
		return err
	}
	s.kafkaSrv = srv
	s.serving.Go(func() { s.serve("kafka", func() error { return srv.Serve(s.kafkaLn) }) })
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
func (s *Server) KafkaAddr() string {
	if s.kafkaLn == nil {
		return ""
	}
	return s.kafkaLn.Addr().String()
}
