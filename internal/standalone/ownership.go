package standalone

import (
	"context"
	"net"

	"github.com/magnetar-mq/magnetar/broker"
)

// standaloneBrokerID is the broker ID of a standalone server that is not
// given one: it is the only broker of its metadata service, so a restart
// takes over its previous run's registration (and bundles) at once. It is
// also the Kafka node ID (0, as before brokers had IDs).
const standaloneBrokerID = "0"

// startOwnership registers the broker with the addresses clients reach it
// at, so that it serves the bundles it owns (all of them, alone).
func (s *Server) startOwnership(ctx context.Context, cfg Config, nativeAdvertised string) error {
	host, _, err := net.SplitHostPort(nativeAdvertised)
	if err != nil {
		host = "127.0.0.1"
	}
	adv := broker.Advertised{Native: nativeAdvertised, Admin: advertise(host, s.httpLn)}
	if s.kafkaLn != nil {
		adv.Kafka = cfg.Kafka.AdvertisedAddr
		if adv.Kafka == "" {
			adv.Kafka = advertise("", s.kafkaLn)
		}
	}
	return s.broker.StartOwnership(ctx, adv)
}

// advertise is host (or the listener's own host, 127.0.0.1 for a wildcard)
// with the listener's port.
func advertise(host string, ln net.Listener) string {
	lh, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return ln.Addr().String()
	}
	if host == "" {
		host = lh
		if ip := net.ParseIP(lh); ip == nil || ip.IsUnspecified() {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port)
}
