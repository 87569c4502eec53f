package broker

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// Policies are stored as catalogpb.Policies on a namespace (every topic of
// it) and on a topic (overrides of its namespace's): an unset field
// inherits. A topic's effective policies are resolved field by field: the
// topic's override, else the namespace's value, else the broker's default
// (PolicyDefaults). -1 means unlimited where a limit is meant.

// Policy names, as stored (the proto field names) and as the admin API
// spells them.
const (
	PolicyRetentionTime         = "retention_ms"
	PolicyRetentionSize         = "retention_bytes"
	PolicyMessageTTL            = "message_ttl_ms"
	PolicyBacklogQuotaSize      = "backlog_quota_bytes"
	PolicyBacklogQuotaAction    = "backlog_quota_action"
	PolicyMaxTopics             = "max_topics"
	PolicyPublishRateMsgs       = "publish_rate_msgs"
	PolicyPublishRateBytes      = "publish_rate_bytes"
	PolicyAutoTopicCreation     = "auto_topic_creation"
	PolicyAutoTopicPartitions   = "auto_topic_partitions"
	PolicyOffloadThresholdBytes = "offload_threshold_bytes"
)

// PolicyNames lists every policy, in the order the admin API shows them.
var PolicyNames = []string{
	PolicyRetentionTime, PolicyRetentionSize, PolicyMessageTTL,
	PolicyBacklogQuotaSize, PolicyBacklogQuotaAction, PolicyMaxTopics,
	PolicyPublishRateMsgs, PolicyPublishRateBytes, PolicyAutoTopicCreation,
	PolicyAutoTopicPartitions, PolicyOffloadThresholdBytes,
}

// namespaceOnly are the policies a topic cannot override: they are about
// the namespace's set of topics, not about one topic.
var namespaceOnly = map[string]bool{
	PolicyMaxTopics:           true,
	PolicyAutoTopicCreation:   true,
	PolicyAutoTopicPartitions: true,
}

// EffectivePolicies are a topic's policies once inheritance is resolved:
// every field has a value.
type EffectivePolicies struct {
	// RetentionTime keeps acknowledged messages this long (negative:
	// forever; 0: not at all, only the backlog is kept).
	RetentionTime time.Duration
	// RetentionBytes keeps acknowledged messages up to this size per
	// partition (-1: no size limit).
	RetentionBytes int64
	// MessageTTL acknowledges unacknowledged messages older than this on
	// every subscription (0: never).
	MessageTTL time.Duration
	// BacklogQuotaBytes caps a subscription's backlog (-1: unlimited), and
	// BacklogQuotaAction says what happens when it is reached.
	BacklogQuotaBytes  int64
	BacklogQuotaAction catalogpb.BacklogQuotaAction
	// MaxTopics caps the namespace's topics (0: unlimited).
	MaxTopics int32
	// PublishRateMsgs and PublishRateBytes cap what producers publish to
	// the topic per second on this broker (0: unlimited); a producer over
	// the rate is slowed down, not failed.
	PublishRateMsgs  int64
	PublishRateBytes int64
	// AutoTopicCreation creates a missing topic when a producer or consumer
	// names it, with AutoTopicPartitions partitions.
	AutoTopicCreation   bool
	AutoTopicPartitions int32
	// OffloadThresholdBytes: sealed segments are offloaded to the object
	// store once a partition keeps more than this on bookies (-1: never).
	OffloadThresholdBytes int64
}

// PolicyDefaults are the broker's defaults of the policies a namespace or
// topic does not set. Auto topic creation defaults to
// Config.AutoCreateTopics.
type PolicyDefaults struct {
	RetentionTime         time.Duration `yaml:"retention-time"`
	RetentionBytes        int64         `yaml:"retention-size"`
	MessageTTL            time.Duration `yaml:"message-ttl"`
	BacklogQuotaBytes     int64         `yaml:"backlog-quota-size"`
	BacklogQuotaAction    string        `yaml:"backlog-quota-action"`
	MaxTopics             int           `yaml:"max-topics-per-namespace"`
	PublishRateMsgs       int64         `yaml:"publish-rate-msgs"`
	PublishRateBytes      int64         `yaml:"publish-rate-bytes"`
	AutoTopicPartitions   int           `yaml:"auto-topic-partitions"`
	OffloadThresholdBytes int64         `yaml:"offload-threshold-bytes"`
}

// RegisterFlags registers the defaults' flags under prefix (e.g.
// "broker.default-").
func (d *PolicyDefaults) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.DurationVar(&d.RetentionTime, prefix+"retention-time", 7*24*time.Hour, "keep acknowledged messages this long (-1ns: forever) unless a namespace or topic says otherwise")
	fs.Int64Var(&d.RetentionBytes, prefix+"retention-size", -1, "keep acknowledged messages up to this many bytes per partition (-1: no limit)")
	fs.DurationVar(&d.MessageTTL, prefix+"message-ttl", 0, "acknowledge messages older than this on every subscription (0: never)")
	fs.Int64Var(&d.BacklogQuotaBytes, prefix+"backlog-quota-size", -1, "largest backlog of a subscription in bytes (-1: unlimited)")
	fs.StringVar(&d.BacklogQuotaAction, prefix+"backlog-quota-action", "producer_request_hold", "when a backlog quota is reached: producer_request_hold, producer_exception or consumer_backlog_eviction")
	fs.IntVar(&d.MaxTopics, prefix+"max-topics-per-namespace", 0, "most topics in a namespace (0: unlimited)")
	fs.Int64Var(&d.PublishRateMsgs, prefix+"publish-rate-msgs", 0, "messages per second producers may publish to a topic (0: unlimited)")
	fs.Int64Var(&d.PublishRateBytes, prefix+"publish-rate-bytes", 0, "bytes per second producers may publish to a topic (0: unlimited)")
	fs.IntVar(&d.AutoTopicPartitions, prefix+"auto-topic-partitions", 1, "partitions of an automatically created topic")
	fs.Int64Var(&d.OffloadThresholdBytes, prefix+"offload-threshold-bytes", -1, "offload sealed segments once a partition keeps more than this on bookies (-1: never)")
}

// Validate reports defaults that cannot work.
func (d *PolicyDefaults) Validate() error {
	if _, err := ParseBacklogQuotaAction(d.BacklogQuotaAction); err != nil {
		return err
	}
	switch {
	case d.RetentionBytes < -1:
		return errors.New("broker: default retention-size must be -1 or more")
	case d.MessageTTL < 0:
		return errors.New("broker: default message-ttl must not be negative")
	case d.BacklogQuotaBytes < -1:
		return errors.New("broker: default backlog-quota-size must be -1 or more")
	case d.MaxTopics < 0 || d.PublishRateMsgs < 0 || d.PublishRateBytes < 0:
		return errors.New("broker: default max-topics-per-namespace and publish rates must not be negative")
	case d.AutoTopicPartitions < 1 || d.AutoTopicPartitions > MaxPartitions:
		return fmt.Errorf("broker: default auto-topic-partitions must be between 1 and %d", MaxPartitions)
	case d.OffloadThresholdBytes < -1:
		return errors.New("broker: default offload-threshold-bytes must be -1 or more")
	}
	return nil
}

// effective returns the defaults as effective policies; autoCreate is the
// broker's AutoCreateTopics.
func (d *PolicyDefaults) effective(autoCreate bool) EffectivePolicies {
	action, _ := ParseBacklogQuotaAction(d.BacklogQuotaAction)
	return EffectivePolicies{
		RetentionTime:         d.RetentionTime,
		RetentionBytes:        d.RetentionBytes,
		MessageTTL:            d.MessageTTL,
		BacklogQuotaBytes:     d.BacklogQuotaBytes,
		BacklogQuotaAction:    action,
		MaxTopics:             int32(d.MaxTopics),
		PublishRateMsgs:       d.PublishRateMsgs,
		PublishRateBytes:      d.PublishRateBytes,
		AutoTopicCreation:     autoCreate,
		AutoTopicPartitions:   int32(d.AutoTopicPartitions),
		OffloadThresholdBytes: d.OffloadThresholdBytes,
	}
}

// apply overrides e with the fields p sets.
func (e *EffectivePolicies) apply(p *catalogpb.Policies) {
	if p == nil {
		return
	}
	if p.RetentionMs != nil {
		e.RetentionTime = msDuration(*p.RetentionMs)
	}
	if p.RetentionBytes != nil {
		e.RetentionBytes = *p.RetentionBytes
	}
	if p.MessageTtlMs != nil {
		e.MessageTTL = msDuration(*p.MessageTtlMs)
	}
	if p.BacklogQuotaBytes != nil {
		e.BacklogQuotaBytes = *p.BacklogQuotaBytes
	}
	if p.BacklogQuotaAction != catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_ACTION_UNSPECIFIED {
		e.BacklogQuotaAction = p.BacklogQuotaAction
	}
	if p.MaxTopics != nil {
		e.MaxTopics = max(*p.MaxTopics, 0)
	}
	if p.PublishRateMsgs != nil {
		e.PublishRateMsgs = max(*p.PublishRateMsgs, 0)
	}
	if p.PublishRateBytes != nil {
		e.PublishRateBytes = max(*p.PublishRateBytes, 0)
	}
	switch p.AutoTopicCreation {
	case catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_ENABLED:
		e.AutoTopicCreation = true
	case catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_DISABLED:
		e.AutoTopicCreation = false
	}
	if p.AutoTopicPartitions != nil {
		e.AutoTopicPartitions = *p.AutoTopicPartitions
	}
	if p.OffloadThresholdBytes != nil {
		e.OffloadThresholdBytes = *p.OffloadThresholdBytes
	}
}

// msDuration is a stored millisecond count as a duration; -1 stays -1ns
// (forever).
func msDuration(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// Policies returns the effective policies as stored policies with every
// field set (for showing them), in the stored units.
func (e EffectivePolicies) Policies() *catalogpb.Policies {
	ms := func(d time.Duration) int64 {
		if d < 0 {
			return -1
		}
		return d.Milliseconds()
	}
	auto := catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_DISABLED
	if e.AutoTopicCreation {
		auto = catalogpb.AutoTopicCreation_AUTO_TOPIC_CREATION_ENABLED
	}
	return &catalogpb.Policies{
		RetentionMs:           proto.Int64(ms(e.RetentionTime)),
		RetentionBytes:        proto.Int64(e.RetentionBytes),
		MessageTtlMs:          proto.Int64(ms(e.MessageTTL)),
		BacklogQuotaBytes:     proto.Int64(e.BacklogQuotaBytes),
		BacklogQuotaAction:    e.BacklogQuotaAction,
		MaxTopics:             proto.Int32(e.MaxTopics),
		PublishRateMsgs:       proto.Int64(e.PublishRateMsgs),
		PublishRateBytes:      proto.Int64(e.PublishRateBytes),
		AutoTopicCreation:     auto,
		AutoTopicPartitions:   proto.Int32(e.AutoTopicPartitions),
		OffloadThresholdBytes: proto.Int64(e.OffloadThresholdBytes),
	}
}

var backlogActionNames = map[catalogpb.BacklogQuotaAction]string{
	catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_REQUEST_HOLD:     "producer_request_hold",
	catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_PRODUCER_EXCEPTION:        "producer_exception",
	catalogpb.BacklogQuotaAction_BACKLOG_QUOTA_CONSUMER_BACKLOG_EVICTION: "consumer_backlog_eviction",
}

// ParseBacklogQuotaAction parses producer_request_hold, producer_exception
// or consumer_backlog_eviction.
func ParseBacklogQuotaAction(s string) (catalogpb.BacklogQuotaAction, error) {
	for a, n := range backlogActionNames {
		if strings.EqualFold(s, n) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: backlog quota action %q: want producer_request_hold, producer_exception or consumer_backlog_eviction", ErrInvalidArgument, s)
}

// BacklogQuotaActionName is the inverse of ParseBacklogQuotaAction ("" for
// UNSPECIFIED).
func BacklogQuotaActionName(a catalogpb.BacklogQuotaAction) string { return backlogActionNames[a] }

// PolicyUpdate changes some stored policies and leaves the others as they
// are.
type PolicyUpdate struct {
	// Set: every field it sets replaces the stored one.
	Set *catalogpb.Policies
	// Remove names policies (PolicyNames) to unset, so they inherit again.
	// A policy both set and removed is an error.
	Remove []string
}

// apply returns cur with the update applied (cur is not modified).
func (u PolicyUpdate) apply(cur *catalogpb.Policies) (*catalogpb.Policies, error) {
	out := &catalogpb.Policies{}
	if cur != nil {
		out = proto.Clone(cur).(*catalogpb.Policies)
	}
	fields := out.ProtoReflect().Descriptor().Fields()
	for _, name := range u.Remove {
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil {
			return nil, fmt.Errorf("%w: unknown policy %q (want one of %s)", ErrInvalidArgument, name, strings.Join(PolicyNames, ", "))
		}
		if u.Set != nil && u.Set.ProtoReflect().Has(fd) {
			return nil, fmt.Errorf("%w: policy %s both set and removed", ErrInvalidArgument, name)
		}
		out.ProtoReflect().Clear(fd)
	}
	if u.Set != nil {
		proto.Merge(out, u.Set)
	}
	return out, nil
}

// validatePolicies checks stored policies: values in range, and on a
// topic only what a topic can override.
func validatePolicies(p *catalogpb.Policies, topic bool) error {
	if p == nil {
		return nil
	}
	bad := func(name, want string) error {
		return fmt.Errorf("%w: policy %s must be %s", ErrInvalidArgument, name, want)
	}
	minusOneOrMore := func(name string, v *int64) error {
		if v != nil && *v < -1 {
			return bad(name, "-1 (unlimited) or more")
		}
		return nil
	}
	for _, c := range []struct {
		name string
		v    *int64
	}{
		{PolicyRetentionTime, p.RetentionMs}, {PolicyRetentionSize, p.RetentionBytes},
		{PolicyBacklogQuotaSize, p.BacklogQuotaBytes}, {PolicyPublishRateMsgs, p.PublishRateMsgs},
		{PolicyPublishRateBytes, p.PublishRateBytes}, {PolicyOffloadThresholdBytes, p.OffloadThresholdBytes},
	} {
		if err := minusOneOrMore(c.name, c.v); err != nil {
			return err
		}
	}
	if p.MessageTtlMs != nil && *p.MessageTtlMs < 0 {
		return bad(PolicyMessageTTL, "0 (never) or more")
	}
	if p.MaxTopics != nil && *p.MaxTopics < -1 {
		return bad(PolicyMaxTopics, "-1 or 0 (unlimited) or more")
	}
	if p.AutoTopicPartitions != nil && (*p.AutoTopicPartitions < 1 || *p.AutoTopicPartitions > MaxPartitions) {
		return bad(PolicyAutoTopicPartitions, fmt.Sprintf("between 1 and %d", MaxPartitions))
	}
	if _, ok := catalogpb.BacklogQuotaAction_name[int32(p.BacklogQuotaAction)]; !ok {
		return bad(PolicyBacklogQuotaAction, "a known action")
	}
	if _, ok := catalogpb.AutoTopicCreation_name[int32(p.AutoTopicCreation)]; !ok {
		return bad(PolicyAutoTopicCreation, "enabled or disabled")
	}
	if topic {
		var err error
		p.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if namespaceOnly[string(fd.Name())] {
				err = fmt.Errorf("%w: policy %s applies to a namespace, not to one topic", ErrInvalidArgument, fd.Name())
				return false
			}
			return true
		})
		return err
	}
	return nil
}
