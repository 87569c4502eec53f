package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/magnetar-mq/magnetar/metadata/catalog"
	"github.com/magnetar-mq/magnetar/metadata/catalog/catalogpb"
)

// policyState is the broker's policy machinery: the cache of stored
// policies, the broker's defaults and the publish rate limiters.
type policyState struct {
	defaults EffectivePolicies
	cache    *policyCache
	limits   *publishLimiters
}

func newPolicyState(b *Broker) *policyState {
	return &policyState{
		defaults: b.cfg.Policies.effective(b.cfg.AutoCreateTopics),
		cache:    newPolicyCache(b),
		limits:   newPublishLimiters(b.stop),
	}
}

func (s *policyState) invalidateNamespace(ns NamespaceName) { s.cache.ns.invalidate(ns.catName()) }

func (s *policyState) invalidateTopic(n TopicName) { s.cache.topics.invalidate(n.catName()) }

// EffectivePolicies returns the topic's policies once inheritance is
// resolved, field by field: the topic's override, else its namespace's
// policy, else the broker's default. It is meant for hot paths: after the
// first call for a topic it reads only this broker's cache, which the
// metadata store's watch keeps current (a change made through any broker
// applies here as soon as the watch event arrives; see policycache.go). A
// topic or namespace that does not exist has no overrides: the result is
// then what a topic created there now would get. The error is the metadata
// store's, on a cache miss only.
func (b *Broker) EffectivePolicies(ctx context.Context, name TopicName) (EffectivePolicies, error) {
	e := b.pol.defaults
	nsPol, _, err := b.pol.cache.ns.get(ctx, name.NamespaceName().catName())
	if err != nil {
		return e, err
	}
	e.apply(nsPol)
	tPol, _, err := b.pol.cache.topics.get(ctx, name.catName())
	if err != nil {
		return e, err
	}
	e.apply(tPol)
	return e, nil
}

// DefaultPolicies returns the broker's defaults, what a namespace that
// sets nothing gets.
func (b *Broker) DefaultPolicies() EffectivePolicies { return b.pol.defaults }

// ResolvePolicies resolves the broker's defaults overridden by the
// namespace's policies, then by the topic's (either may be nil).
func (b *Broker) ResolvePolicies(namespace, topic *catalogpb.Policies) EffectivePolicies {
	e := b.pol.defaults
	e.apply(namespace)
	e.apply(topic)
	return e
}

// NamespacePolicies returns the policies stored on the namespace, read
// from the metadata store (not the cache).
func (b *Broker) NamespacePolicies(ctx context.Context, ns NamespaceName) (*catalogpb.Policies, error) {
	info, err := b.Namespace(ctx, ns)
	if err != nil {
		return nil, err
	}
	return orEmpty(info.Policies), nil
}

// TopicPolicies returns the overrides stored on the topic and the policies
// of its namespace (empty if the namespace row is missing), read from the
// metadata store.
func (b *Broker) TopicPolicies(ctx context.Context, name TopicName) (topic, namespace *catalogpb.Policies, err error) {
	e, ok, err := b.cat.Topics.Get(ctx, name.catName())
	if err != nil {
		return nil, nil, wrapMeta("get topic", err)
	}
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	ns, err := b.NamespacePolicies(ctx, name.NamespaceName())
	if errors.Is(err, ErrNamespaceNotFound) {
		ns, err = &catalogpb.Policies{}, nil // a topic from before namespaces were enforced
	}
	if err != nil {
		return nil, nil, err
	}
	return orEmpty(e.Value.Policies), ns, nil
}

func orEmpty(p *catalogpb.Policies) *catalogpb.Policies {
	if p == nil {
		return &catalogpb.Policies{}
	}
	return p
}

// SetNamespacePolicies applies the update to the namespace's policies
// (with compare-and-swap: concurrent updates of different policies do not
// undo each other) and returns the policies now stored.
func (b *Broker) SetNamespacePolicies(ctx context.Context, ns NamespaceName, upd PolicyUpdate) (*catalogpb.Policies, error) {
	for {
		e, ok, err := b.cat.Namespaces.Get(ctx, ns.catName())
		if err != nil {
			return nil, wrapMeta("set namespace policies", err)
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNamespaceNotFound, ns)
		}
		pol, err := upd.apply(e.Value.Policies)
		if err != nil {
			return nil, err
		}
		if err := validatePolicies(pol, false); err != nil {
			return nil, err
		}
		e.Value.Policies = pol
		_, err = b.cat.Namespaces.Update(ctx, ns.catName(), e.Value, e.Version)
		if errors.Is(err, catalog.ErrConflict) {
			continue
		}
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNamespaceNotFound, ns)
		}
		if err != nil {
			return nil, wrapMeta("set namespace policies", err)
		}
		b.pol.invalidateNamespace(ns)
		b.log.Info("namespace policies set", "namespace", ns.String(), "policies", pol.String())
		return pol, nil
	}
}

// SetTopicPolicies applies the update to the topic's overrides and returns
// the overrides now stored. Namespace-wide policies (max_topics, auto topic
// creation) cannot be set on a topic.
func (b *Broker) SetTopicPolicies(ctx context.Context, name TopicName, upd PolicyUpdate) (*catalogpb.Policies, error) {
	for {
		e, ok, err := b.cat.Topics.Get(ctx, name.catName())
		if err != nil {
			return nil, wrapMeta("set topic policies", err)
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		pol, err := upd.apply(e.Value.Policies)
		if err != nil {
			return nil, err
		}
		if err := validatePolicies(pol, true); err != nil {
			return nil, err
		}
		e.Value.Policies = pol
		if isEmpty(pol) {
			e.Value.Policies = nil // an override-free topic row stays a few bytes
		}
		_, err = b.cat.Topics.Update(ctx, name.catName(), e.Value, e.Version)
		if errors.Is(err, catalog.ErrConflict) {
			continue
		}
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
		}
		if err != nil {
			return nil, wrapMeta("set topic policies", err)
		}
		b.pol.invalidateTopic(name)
		b.log.Info("topic policies set", "topic", name.String(), "policies", pol.String())
		return pol, nil
	}
}

func isEmpty(p *catalogpb.Policies) bool { return proto.Size(p) == 0 }

// startPolicies sets up the policy cache and its watches and creates the
// default namespace, and its tenant, if they are missing (a failure there
// is logged: the namespace is then created with its first topic).
func (b *Broker) startPolicies() {
	b.pol = newPolicyState(b)
	b.pol.cache.start()
	ctx, cancel := context.WithTimeout(context.Background(), ensureDefaultTimeout)
	defer cancel()
	if err := b.EnsureNamespace(ctx, b.defaultNamespace()); err != nil {
		b.log.Warn("creating the default namespace", "namespace", b.cfg.DefaultNamespace, "err", err)
	}
}

// ensureDefaultTimeout bounds creating the default namespace at start.
const ensureDefaultTimeout = 10 * time.Second
