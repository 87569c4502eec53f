package broker

import (
	"fmt"
	"strings"
)

// TopicName is a parsed, canonical topic name: tenant/namespace/topic.
type TopicName struct {
	Tenant    string
	Namespace string
	Topic     string
}

// String returns the canonical form tenant/namespace/topic.
func (n TopicName) String() string {
	return n.Tenant + "/" + n.Namespace + "/" + n.Topic
}

// NamespaceKey returns tenant/namespace.
func (n TopicName) NamespaceKey() string { return n.Tenant + "/" + n.Namespace }

const persistentScheme = "persistent://"

// ParseTopicName accepts `tenant/namespace/topic`,
// `persistent://tenant/namespace/topic`, or a bare `topic`, which lands in
// defaultNamespace (`tenant/namespace`).
func ParseTopicName(s, defaultNamespace string) (TopicName, error) {
	s = strings.TrimPrefix(s, persistentScheme)
	parts := strings.Split(s, "/")
	var n TopicName
	switch len(parts) {
	case 1:
		ns := strings.Split(defaultNamespace, "/")
		if len(ns) != 2 {
			return TopicName{}, fmt.Errorf("%w: default namespace %q is not tenant/namespace", ErrInvalidTopicName, defaultNamespace)
		}
		n = TopicName{Tenant: ns[0], Namespace: ns[1], Topic: parts[0]}
	case 3:
		n = TopicName{Tenant: parts[0], Namespace: parts[1], Topic: parts[2]}
	default:
		return TopicName{}, fmt.Errorf("%w: %q: want tenant/namespace/topic or a bare topic name", ErrInvalidTopicName, s)
	}
	for _, p := range []string{n.Tenant, n.Namespace, n.Topic} {
		if err := validNamePart(p); err != nil {
			return TopicName{}, fmt.Errorf("%w: %q: %v", ErrInvalidTopicName, s, err)
		}
	}
	return n, nil
}

// validNamePart allows what Kafka allows in topic names (letters, digits,
// '.', '_', '-'), at most 249 characters, so every topic can be served
// over Kafka too.
func validNamePart(p string) error {
	if p == "" {
		return fmt.Errorf("empty name part")
	}
	if len(p) > 249 {
		return fmt.Errorf("name part longer than 249 characters")
	}
	if p == "." || p == ".." {
		return fmt.Errorf("%q is not a valid name", p)
	}
	for _, c := range p {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("character %q not allowed (letters, digits, '.', '_', '-')", c)
		}
	}
	return nil
}
