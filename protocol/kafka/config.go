package kafka

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
)

// Config configures the Kafka listener. Defaults are set by RegisterFlags.
type Config struct {
	// ListenAddr is where Kafka clients connect; empty disables the
	// listener.
	ListenAddr string `yaml:"listen-addr"`
	// AdvertisedAddr is the host:port Metadata responses tell clients to
	// use. Empty: the listener's host (127.0.0.1 when it listens on every
	// address) and port.
	AdvertisedAddr string `yaml:"advertised-addr"`
	// DefaultNamespace (tenant/namespace) holds the topics Kafka clients
	// see: Kafka topic "orders" is tenant/namespace/orders.
	DefaultNamespace string `yaml:"default-namespace"`
	// AutoCreateTopics creates a topic a Metadata request names when it
	// does not exist (and the request allows it), as Kafka's
	// auto.create.topics.enable does.
	AutoCreateTopics bool `yaml:"auto-create-topics"`
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that leave it to the broker (Kafka's
	// num.partitions).
	DefaultPartitions int `yaml:"default-partitions"`
	// MaxMessageBytes caps one produced record batch (Kafka's
	// message.max.bytes); the broker's own limit applies too.
	MaxMessageBytes int `yaml:"max-message-bytes"`
	// MaxRequestBytes caps one request on the wire (Kafka's
	// socket.request.max.bytes); a larger one closes the connection.
	MaxRequestBytes int `yaml:"max-request-bytes"`
	// FetchMaxBytes caps the record bytes of one Fetch response, whatever
	// the client asks for (Kafka's fetch.max.bytes); the first batch is
	// answered whole regardless (KIP-74).
	FetchMaxBytes int `yaml:"fetch-max-bytes"`
	// GroupMinSessionTimeout and GroupMaxSessionTimeout bound the session
	// timeout a consumer-group member may ask for (Kafka's
	// group.min/max.session.timeout.ms).
	GroupMinSessionTimeout time.Duration `yaml:"group-min-session-timeout"`
	GroupMaxSessionTimeout time.Duration `yaml:"group-max-session-timeout"`
	// GroupInitialRebalanceDelay holds the first rebalance of an empty
	// group that long for more members to join (Kafka's
	// group.initial.rebalance.delay.ms, 3s there).
	GroupInitialRebalanceDelay time.Duration `yaml:"group-initial-rebalance-delay"`
	// SASLMechanisms lists the SASL mechanisms clients must log in with
	// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER), comma-separated;
	// empty: no authentication.
	SASLMechanisms string `yaml:"sasl-mechanisms"`
	// SASLUsers is name:password pairs, comma-separated, and
	// SASLUsersFile a file of them, one per line; both may be used. They
	// log in with PLAIN and SCRAM.
	SASLUsers     string `yaml:"sasl-users"`
	SASLUsersFile string `yaml:"sasl-users-file"`
	// OAuthBearer verifies the JWTs of OAUTHBEARER logins, whose "sub" is
	// the role: point it at the key of the native and admin listeners'
	// tokens (auth.token-*) to take the same tokens.
	OAuthBearer auth.TokenConfig `yaml:"sasl-oauthbearer"`
	// TLSListenAddr is a second listener, speaking TLS with TLSCertFile
	// and TLSKeyFile; empty: none. TLSAdvertisedAddr is what Metadata tells
	// clients that came in over it.
	TLSListenAddr     string `yaml:"tls-listen-addr"`
	TLSAdvertisedAddr string `yaml:"tls-advertised-addr"`
	TLSCertFile       string `yaml:"tls-cert-file"`
	TLSKeyFile        string `yaml:"tls-key-file"`
	// TLSClientCAFile, when set, makes the TLS listener require client
	// certificates signed by these CAs (mutual TLS).
	TLSClientCAFile string `yaml:"tls-client-ca-file"`

	// Limits against hostile or broken clients (docs/kafka.md, Limits).

	// MaxConnections caps the server's open connections (Kafka's
	// max.connections) and MaxConnectionsPerIP those from one IP address
	// (max.connections.per.ip); a connection over either is closed at
	// once.
	MaxConnections      int `yaml:"max-connections"`
	MaxConnectionsPerIP int `yaml:"max-connections-per-ip"`
	// ConnectionsMaxIdle closes a connection that sent no request for that
	// long (Kafka's connections.max.idle.ms).
	ConnectionsMaxIdle time.Duration `yaml:"connections-max-idle"`
	// RequestReadTimeout is how long a request may take to arrive once its
	// 4-byte size has, and a TLS handshake to complete; a slower one
	// closes the connection.
	RequestReadTimeout time.Duration `yaml:"request-read-timeout"`
	// SASLMaxReceiveSize caps a frame before the connection has logged in,
	// when SASL is enabled (Kafka's sasl.server.max.receive.size); a larger
	// one closes the connection before it is read.
	SASLMaxReceiveSize int `yaml:"sasl-max-receive-size"`
	// QueuedMaxRequestBytes is the server-wide budget of request bytes
	// read and not yet handled (Kafka's queued.max.request.bytes): a
	// connection reserves a frame's size before reading it and waits,
	// without reading, while the budget is spent.
	QueuedMaxRequestBytes int `yaml:"queued-max-request-bytes"`
	// SASLFailureDelay delays the answer to a failed login, and a source
	// address's next logins (Kafka's connection.failed.authentication.delay.ms);
	// it doubles with each failure from the same source, up to
	// SASLFailureMaxDelay.
	SASLFailureDelay    time.Duration `yaml:"sasl-failure-delay"`
	SASLFailureMaxDelay time.Duration `yaml:"sasl-failure-max-delay"`
	// MaxClientIDBytes truncates the client ID of requests where the server
	// keeps or shows it (group member IDs, DescribeGroups, logs).
	MaxClientIDBytes int `yaml:"max-client-id-bytes"`
}

// RegisterFlags registers the listener's flags under prefix (e.g.
// "kafka.") with their defaults.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.StringVar(&c.ListenAddr, prefix+"listen-addr", ":9092", "listen address of the Kafka protocol (empty: disabled)")
	fs.StringVar(&c.AdvertisedAddr, prefix+"advertised-addr", "", "host:port Kafka clients are told to use (default: the listener's host, 127.0.0.1 for a wildcard, and port)")
	fs.StringVar(&c.DefaultNamespace, prefix+"default-namespace", "public/default", "namespace (tenant/namespace) of Kafka topic names")
	fs.BoolVar(&c.AutoCreateTopics, prefix+"auto-create-topics", true, "create topics named in Metadata requests that do not exist")
	fs.IntVar(&c.DefaultPartitions, prefix+"default-partitions", 1, "partitions of auto-created topics and of CreateTopics without a count")
	fs.IntVar(&c.MaxMessageBytes, prefix+"max-message-bytes", 1048588, "largest produced record batch in bytes")
	fs.IntVar(&c.MaxRequestBytes, prefix+"max-request-bytes", 100<<20, "largest request in bytes; a larger one closes the connection")
	fs.IntVar(&c.FetchMaxBytes, prefix+"fetch-max-bytes", 55<<20, "most record bytes in one Fetch response, whatever the client asks for (Kafka's fetch.max.bytes)")
	fs.DurationVar(&c.GroupMinSessionTimeout, prefix+"group-min-session-timeout", 6*time.Second, "shortest session timeout a consumer-group member may ask for")
	fs.DurationVar(&c.GroupMaxSessionTimeout, prefix+"group-max-session-timeout", 30*time.Minute, "longest session timeout a consumer-group member may ask for")
	fs.StringVar(&c.SASLMechanisms, prefix+"sasl-mechanisms", "", "SASL mechanisms clients must authenticate with: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, comma-separated (empty: no authentication)")
	fs.StringVar(&c.SASLUsers, prefix+"sasl-users", "", "SASL users as name:password pairs, comma-separated (prefer MAGNETAR_KAFKA_SASL_USERS or --kafka.sasl-users-file: flags show in ps)")
	fs.StringVar(&c.SASLUsersFile, prefix+"sasl-users-file", "", "file of SASL users, one name:password per line ('#' comments)")
	c.OAuthBearer.RegisterFlags(prefix+"sasl-oauthbearer.", fs)
	fs.StringVar(&c.TLSListenAddr, prefix+"tls-listen-addr", "", "listen address of a TLS Kafka listener (empty: none); needs --kafka.tls-cert-file and --kafka.tls-key-file")
	fs.StringVar(&c.TLSAdvertisedAddr, prefix+"tls-advertised-addr", "", "host:port clients of the TLS listener are told to use (default: like --kafka.advertised-addr, for the TLS listener)")
	fs.StringVar(&c.TLSCertFile, prefix+"tls-cert-file", "", "PEM certificate (chain) of the TLS listener")
	fs.StringVar(&c.TLSKeyFile, prefix+"tls-key-file", "", "PEM private key of the TLS listener")
	fs.StringVar(&c.TLSClientCAFile, prefix+"tls-client-ca-file", "", "PEM CA certificates; when set, TLS clients must present a certificate they signed")
	fs.DurationVar(&c.GroupInitialRebalanceDelay, prefix+"group-initial-rebalance-delay", 0, "how long the first rebalance of an empty group waits for more members (Kafka uses 3s)")
	fs.IntVar(&c.MaxConnections, prefix+"max-connections", 10000, "most open connections; more are closed at once (Kafka's max.connections)")
	fs.IntVar(&c.MaxConnectionsPerIP, prefix+"max-connections-per-ip", 1000, "most open connections from one IP address; more are closed at once (Kafka's max.connections.per.ip)")
	fs.DurationVar(&c.ConnectionsMaxIdle, prefix+"connections-max-idle", 10*time.Minute, "close a connection that sent no request for this long (Kafka's connections.max.idle.ms)")
	fs.DurationVar(&c.RequestReadTimeout, prefix+"request-read-timeout", 30*time.Second, "close a connection whose request does not arrive whole this long after its size, or whose TLS handshake takes longer")
	fs.IntVar(&c.SASLMaxReceiveSize, prefix+"sasl-max-receive-size", 512<<10, "largest request in bytes before the client has logged in, when SASL is enabled (Kafka's sasl.server.max.receive.size)")
	fs.IntVar(&c.QueuedMaxRequestBytes, prefix+"queued-max-request-bytes", 256<<20, "request bytes read and not yet handled, over all connections; past it connections wait before reading (Kafka's queued.max.request.bytes)")
	fs.DurationVar(&c.SASLFailureDelay, prefix+"sasl-failure-delay", 100*time.Millisecond, "delay of the answer to a failed SASL login and of the source's next login, doubling per failure from the same source (Kafka's connection.failed.authentication.delay.ms)")
	fs.DurationVar(&c.SASLFailureMaxDelay, prefix+"sasl-failure-max-delay", 5*time.Second, "largest delay after failed SASL logins from one source")
	fs.IntVar(&c.MaxClientIDBytes, prefix+"max-client-id-bytes", 256, "longer client IDs are truncated to this many bytes where the server keeps or shows them (group member IDs, DescribeGroups, logs)")
}

// DefaultConfig returns the defaults RegisterFlags sets.
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags("", flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	if _, err := broker.ParseTopicName("x", c.DefaultNamespace); err != nil {
		return fmt.Errorf("kafka: default-namespace: %w", err)
	}
	if c.AdvertisedAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertisedAddr); err != nil {
			return fmt.Errorf("kafka: advertised-addr: %w", err)
		}
	}
	switch {
	case c.DefaultPartitions < 1 || c.DefaultPartitions > broker.MaxPartitions:
		return fmt.Errorf("kafka: default-partitions must be between 1 and %d", broker.MaxPartitions)
	case c.MaxMessageBytes <= 0:
		return errors.New("kafka: max-message-bytes must be positive")
	case c.MaxRequestBytes < c.MaxMessageBytes:
		return errors.New("kafka: max-request-bytes must be at least max-message-bytes")
	case c.FetchMaxBytes < 1024:
		return errors.New("kafka: fetch-max-bytes must be at least 1024")
	case c.GroupMinSessionTimeout <= 0 || c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout:
		return errors.New("kafka: group session timeouts: want 0 < min <= max")
	case c.GroupInitialRebalanceDelay < 0:
		return errors.New("kafka: group-initial-rebalance-delay must not be negative")
	case c.TLSListenAddr != "" && (c.TLSCertFile == "" || c.TLSKeyFile == ""):
		return errors.New("kafka: tls-listen-addr needs tls-cert-file and tls-key-file")
	case c.MaxConnections < 1 || c.MaxConnectionsPerIP < 1:
		return errors.New("kafka: max-connections and max-connections-per-ip must be positive")
	case c.ConnectionsMaxIdle <= 0 || c.RequestReadTimeout <= 0:
		return errors.New("kafka: connections-max-idle and request-read-timeout must be positive")
	case c.SASLMaxReceiveSize < 1:
		return errors.New("kafka: sasl-max-receive-size must be positive")
	case c.QueuedMaxRequestBytes < c.MaxRequestBytes:
		return errors.New("kafka: queued-max-request-bytes must be at least max-request-bytes (a request that large could never be read)")
	case c.SASLFailureDelay < 0 || c.SASLFailureMaxDelay < c.SASLFailureDelay:
		return errors.New("kafka: sasl failure delays: want 0 <= sasl-failure-delay <= sasl-failure-max-delay")
	case c.MaxClientIDBytes < 1:
		return errors.New("kafka: max-client-id-bytes must be positive")
	}
	if c.TLSAdvertisedAddr != "" {
		if _, _, err := net.SplitHostPort(c.TLSAdvertisedAddr); err != nil {
			return fmt.Errorf("kafka: tls-advertised-addr: %w", err)
		}
	}
	mechs, err := enabledMechanisms(c.SASLMechanisms)
	if err != nil {
		return err
	}
	if usesPasswords(mechs) && c.SASLUsers == "" && c.SASLUsersFile == "" {
		return errors.New("kafka: sasl-mechanisms PLAIN and SCRAM need users (sasl-users or sasl-users-file)")
	}
	if err := c.OAuthBearer.Validate(); err != nil {
		return fmt.Errorf("kafka: sasl-oauthbearer: %w", err)
	}
	if slices.Contains(mechs, mechOAuthBearer) && !c.OAuthBearer.Enabled() {
		return errors.New("kafka: sasl-mechanisms OAUTHBEARER needs a token key (sasl-oauthbearer.token-secret-key-file or sasl-oauthbearer.token-public-key-file)")
	}
	return nil
}
