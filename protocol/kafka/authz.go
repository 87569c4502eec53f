package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
)

// Authorization of Kafka requests, decided by the broker (broker/authz.go)
// and mapped here, as Kafka's authorizer maps APIs to operations (KIP-11).
//
// Every request's context carries its connection's principal
// (withPrincipal): the SASL user once logged in, Method "sasl/<MECH>";
// else, on the TLS listener, the role of a verified client certificate
// (auth.TLSPrincipal); else anonymous. What each API needs:
//
//	Produce                              produce on the topic       TOPIC_AUTHORIZATION_FAILED per partition
//	Fetch, ListOffsets                   consume on the topic       TOPIC_AUTHORIZATION_FAILED per partition
//	Metadata                             any grant on a topic to see it (unlisted, or TOPIC_AUTHORIZATION_FAILED
//	                                     when named); produce or admin on the namespace to auto-create one
//	CreateTopics, DeleteTopics,          admin on the topic         TOPIC_AUTHORIZATION_FAILED
//	CreatePartitions, DescribeConfigs
//	DescribeConfigs of the broker        superuser                  CLUSTER_AUTHORIZATION_FAILED
//	FindCoordinator (group), JoinGroup,  the group                  GROUP_AUTHORIZATION_FAILED
//	SyncGroup, Heartbeat, LeaveGroup,
//	DescribeGroups, DeleteGroups
//	OffsetCommit, OffsetFetch            the group, then consume    GROUP_ then TOPIC_AUTHORIZATION_FAILED
//	                                     on each topic
//	ListGroups                           the group                  an empty list (Kafka lists what one may see)
//	InitProducerId                       produce on the namespace,  CLUSTER_AUTHORIZATION_FAILED
//	                                     or on one of its topics (KIP-679)
//	DescribeAcls, CreateAcls, DeleteAcls admin of the tenant        CLUSTER_AUTHORIZATION_FAILED
//	ApiVersions, SaslHandshake,          nothing: what a client needs to log in and find the brokers
//	SaslAuthenticate, DescribeCluster
//
// A group is not a resource of its own: its committed offsets are
// subscriptions on the namespace's topics, and any group needs consume on
// the namespace (acls.go maps GROUP ACLs to that grant).
//
// authorizeRequest runs before every handler: it refuses whole requests
// (groups, producer IDs, ACLs) and lets the others through to handlers
// that check each topic (authorizeTopic). It has a case for every API
// served; a request without one closes the connection, and
// TestEveryServedAPIRefusesAPrincipalWithoutGrants sends each API as a
// principal without grants. With authorization off (broker.AuthzConfig)
// every check passes at once.

// errNoAuthorizationRule closes the connection of a request whose API has
// no case in authorizeRequest: a server bug, never an open door.
var errNoAuthorizationRule = errors.New("kafka: no authorization rule for the API")

// principal is the connection's identity, for the request being handled.
func (c *conn) principal() auth.Principal {
	if c.auth.done {
		return auth.Principal{Role: c.auth.user, Method: "sasl/" + c.auth.mech}
	}
	if tc, ok := c.nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		cs := tc.ConnectionState()
		if p, ok := auth.TLSPrincipal(&cs); ok {
			return p
		}
	}
	return auth.Principal{}
}

// withPrincipal is the context of a request: the connection's, carrying
// its principal, where the broker's authorization reads it.
func (c *conn) withPrincipal() context.Context {
	return auth.NewContext(c.ctx, c.principal())
}

// authorizeRequest refuses a request that the principal may not make at
// all, with a response carrying the refusal; nil lets it through to its
// handler, which checks each topic when the API names topics.
func (c *conn) authorizeRequest(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest, *kmsg.SASLHandshakeRequest, *kmsg.SASLAuthenticateRequest,
		*kmsg.DescribeClusterRequest:
		return nil, nil
	case *kmsg.ProduceRequest, *kmsg.FetchRequest, *kmsg.ListOffsetsRequest, *kmsg.MetadataRequest,
		*kmsg.CreateTopicsRequest, *kmsg.DeleteTopicsRequest, *kmsg.CreatePartitionsRequest,
		*kmsg.DescribeConfigsRequest:
		return nil, nil // each topic, in the handler
	case *kmsg.FindCoordinatorRequest:
		if r.CoordinatorType != 0 {
			return nil, nil // transactions: refused by the handler
		}
		return refuseIf(req, c.authorizeGroups(ctx), kerr.GroupAuthorizationFailed)
	case *kmsg.JoinGroupRequest, *kmsg.SyncGroupRequest, *kmsg.HeartbeatRequest, *kmsg.LeaveGroupRequest,
		*kmsg.DescribeGroupsRequest, *kmsg.DeleteGroupsRequest,
		*kmsg.OffsetCommitRequest, *kmsg.OffsetFetchRequest: // and each topic, in the handler
		return refuseIf(req, c.authorizeGroups(ctx), kerr.GroupAuthorizationFailed)
	case *kmsg.ListGroupsRequest:
		err := c.authorizeGroups(ctx)
		if errors.Is(err, broker.ErrPermissionDenied) {
			return r.ResponseKind(), nil // no group it may see
		}
		return refuseIf(req, err, nil)
	case *kmsg.InitProducerIDRequest:
		return refuseIf(req, c.authorizeProducerID(ctx), kerr.ClusterAuthorizationFailed)
	case *kmsg.DescribeACLsRequest, *kmsg.CreateACLsRequest, *kmsg.DeleteACLsRequest:
		return refuseIf(req, c.authorizeACLs(ctx), kerr.ClusterAuthorizationFailed)
	}
	c.log.Error("closing a connection: no authorization rule for its request", "api", kmsg.NameForKey(req.Key()))
	return nil, fmt.Errorf("%w: %s", errNoAuthorizationRule, kmsg.NameForKey(req.Key()))
}

// refuseIf answers req refused with denied when err is a refusal
// (broker.ErrPermissionDenied), or with err's own code for other errors
// (the metadata store failed); nil err lets it through.
func refuseIf(req kmsg.Request, err error, denied *kerr.Error) (kmsg.Response, error) {
	if err == nil {
		return nil, nil
	}
	code := kafkaCode(err)
	if denied != nil && errors.Is(err, broker.ErrPermissionDenied) {
		code = denied.Code
	}
	resp := refusal(req, code, err.Error())
	if resp == nil {
		return nil, fmt.Errorf("%w: %s cannot be refused whole", errNoAuthorizationRule, kmsg.NameForKey(req.Key()))
	}
	return resp, nil
}

// deniedAs turns a refusal into an error answered with code (and the
// broker's message); other errors pass unchanged.
func deniedAs(err error, code *kerr.Error) error {
	if errors.Is(err, broker.ErrPermissionDenied) {
		return fmt.Errorf("%w: %w", kafkaCodeError(code.Code), err)
	}
	return err
}

// authorizeTopic checks that the principal may do any of need on a topic:
// TOPIC_AUTHORIZATION_FAILED otherwise.
func (c *conn) authorizeTopic(ctx context.Context, name broker.TopicName, need broker.Action) error {
	return deniedAs(c.s.b.AuthorizeTopic(ctx, name, need), kerr.TopicAuthorizationFailed)
}

// authorizedTopic maps a Kafka topic name (topicName) and checks that the
// principal may do any of need on it.
func (c *conn) authorizedTopic(ctx context.Context, kafkaName string, need broker.Action) (broker.TopicName, error) {
	name, err := c.s.topicName(kafkaName)
	if err != nil {
		return name, err
	}
	return name, c.authorizeTopic(ctx, name, need)
}

// namespace is the namespace of Kafka topics (Config.DefaultNamespace).
func (s *Server) namespace() (broker.NamespaceName, error) {
	return broker.ParseNamespaceName(s.cfg.DefaultNamespace)
}

// authorizeNamespace checks that the principal may do any of need on
// every topic of the Kafka namespace; a refusal is
// broker.ErrPermissionDenied.
func (c *conn) authorizeNamespace(ctx context.Context, need broker.Action) error {
	ns, err := c.s.namespace()
	if err != nil {
		return err
	}
	return c.s.b.AuthorizeNamespace(ctx, ns, need)
}

// authorizeGroups: any group needs consume on the Kafka namespace.
func (c *conn) authorizeGroups(ctx context.Context) error {
	return c.authorizeNamespace(ctx, broker.ActionConsume)
}

// authorizeProducerID allows an idempotent producer that may produce on
// the namespace or, as Kafka since KIP-679, on one of its topics.
func (c *conn) authorizeProducerID(ctx context.Context) error {
	err := c.authorizeNamespace(ctx, broker.ActionProduce)
	if !errors.Is(err, broker.ErrPermissionDenied) {
		return err
	}
	infos, lerr := c.s.b.ListTopics(ctx, c.s.cfg.DefaultNamespace)
	if lerr != nil {
		return lerr
	}
	for _, t := range infos {
		if c.s.b.AuthorizeTopic(ctx, t.Name, broker.ActionProduce) == nil {
			return nil
		}
	}
	return err
}

// authorizeACLs: the ACL APIs read and change the namespace's grants,
// which is for admins of its tenant (as magctl's permissions are).
func (c *conn) authorizeACLs(ctx context.Context) error {
	ns, err := c.s.namespace()
	if err != nil {
		return err
	}
	return c.s.b.AuthorizeTenant(ctx, ns.Tenant)
}

// mayDescribeBroker: the broker's configuration is for superusers.
func (c *conn) mayDescribeBroker(ctx context.Context) error {
	return deniedAs(c.s.b.AuthorizeCluster(ctx), kerr.ClusterAuthorizationFailed)
}

// refusal answers a request refused as a whole with code and msg, in the
// fields its response has; nil for an API that is never refused whole.
func refusal(req kmsg.Request, code int16, msg string) kmsg.Response {
	if resp := coordinatorError(req, code); resp != nil {
		return resp // JoinGroup, Heartbeat, LeaveGroup, SyncGroup, OffsetCommit
	}
	switch r := req.(type) {
	case *kmsg.FindCoordinatorRequest:
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Port = code, &msg, -1, -1
		for _, key := range r.CoordinatorKeys {
			rc := kmsg.NewFindCoordinatorResponseCoordinator()
			rc.Key, rc.ErrorCode, rc.ErrorMessage, rc.NodeID, rc.Port = key, code, &msg, -1, -1
			resp.Coordinators = append(resp.Coordinators, rc)
		}
		return resp
	case *kmsg.OffsetFetchRequest:
		return offsetFetchRefusal(r, code)
	case *kmsg.DescribeGroupsRequest:
		resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range r.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	case *kmsg.DeleteGroupsRequest:
		resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, g := range r.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	case *kmsg.ListGroupsRequest:
		resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.InitProducerIDRequest:
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
		return resp
	case *kmsg.DescribeACLsRequest:
		resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		return resp
	case *kmsg.CreateACLsRequest:
		resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
		for range r.Creations {
			rc := kmsg.NewCreateACLsResponseResult()
			rc.ErrorCode, rc.ErrorMessage = code, &msg
			resp.Results = append(resp.Results, rc)
		}
		return resp
	case *kmsg.DeleteACLsRequest:
		resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
		for range r.Filters {
			rf := kmsg.NewDeleteACLsResponseResult()
			rf.ErrorCode, rf.ErrorMessage = code, &msg
			resp.Results = append(resp.Results, rf)
		}
		return resp
	}
	return nil
}

// offsetFetchRefusal answers every group of an OffsetFetch with code: per
// group from version 8, for the request from version 2, per partition in
// version 1 (which has no request-level error).
func offsetFetchRefusal(r *kmsg.OffsetFetchRequest, code int16) kmsg.Response {
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	switch {
	case r.Version >= 8:
		for _, g := range r.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			resp.Groups = append(resp.Groups, rg)
		}
	case r.Version >= 2:
		resp.ErrorCode = code
	default:
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return resp
}
