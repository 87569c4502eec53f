package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Admin talks to a broker's admin REST API (default
// http://127.0.0.1:8080).
type Admin struct {
	base  string
	hc    *http.Client
	token func(context.Context) (string, error) // nil: none
	err   error                                 // of the options, returned by every call
}

// AdminOptions configure an Admin.
type AdminOptions struct {
	// Token is a JWT sent with every request as "Authorization: Bearer
	// <token>". Over an http:// URL it travels in clear: fine on a
	// development machine; use https:// everywhere else.
	Token string
	// TokenSource, instead of Token, returns the token of each request.
	TokenSource func(ctx context.Context) (string, error)
	// TLS configures the connections to an https:// URL: the CAs trusted
	// (RootCAs; nil: the system's), a client certificate (Certificates).
	// Nil: Go's defaults.
	TLS *tls.Config
}

// NewAdmin returns an admin client for the API at baseURL, without
// credentials.
func NewAdmin(baseURL string) *Admin { return NewAdminWithOptions(baseURL, AdminOptions{}) }

// NewAdminWithOptions returns an admin client for the API at baseURL
// (default http://127.0.0.1:8080). Options that are not valid (both Token
// and TokenSource, a token a header cannot carry) make every call fail.
func NewAdminWithOptions(baseURL string, opts AdminOptions) *Admin {
	if baseURL == "" {
		baseURL = "http://127.0.0.1:8080"
	}
	a := &Admin{base: strings.TrimSuffix(baseURL, "/"), hc: &http.Client{}}
	if opts.TLS != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = opts.TLS.Clone()
		a.hc.Transport = t
	}
	a.token, a.err = tokenSource(opts.Token, opts.TokenSource)
	return a
}

// APIError is an error answered by the admin API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("admin API: %s (HTTP %d)", e.Message, e.Status) }

// PartitionStats, SubscriptionStats and TopicStats mirror the broker's
// stats document.
type PartitionStats struct {
	Partition   int32 `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	Segments    int   `json:"segments"`
	Bytes       int64 `json:"bytes"`
}

// SubscriptionStats is one subscription on one partition.
type SubscriptionStats struct {
	Name       string `json:"name"`
	Partition  int32  `json:"partition"`
	NextOffset int64  `json:"next_offset"`
	Backlog    int64  `json:"backlog"`
	Consumers  int    `json:"consumers"`
	// Type is the subscription type of the attached consumers ("" when
	// none is attached).
	Type string `json:"type"`
	// Unacked counts messages handed to consumers and not yet
	// acknowledged; Delayed those indexed for delayed delivery.
	Unacked int `json:"unacked"`
	Delayed int `json:"delayed"`
}

// TopicStats is a topic's state.
type TopicStats struct {
	Topic         string              `json:"topic"`
	Partitions    []PartitionStats    `json:"partitions"`
	Subscriptions []SubscriptionStats `json:"subscriptions"`
	Messages      int64               `json:"messages"`
	Bytes         int64               `json:"bytes"`
}

// CreateTopic creates a topic with the given number of partitions.
func (a *Admin) CreateTopic(ctx context.Context, topic string, partitions int32) (TopicInfo, error) {
	var t topicJSON
	err := a.do(ctx, http.MethodPut, "/admin/v1/topics/"+topicPath(topic), map[string]int32{"partitions": partitions}, &t)
	return TopicInfo(t), err
}

// DeleteTopic deletes a topic with its messages and subscriptions.
func (a *Admin) DeleteTopic(ctx context.Context, topic string) error {
	return a.do(ctx, http.MethodDelete, "/admin/v1/topics/"+topicPath(topic), nil, nil)
}

// ListTopics lists the topics of a namespace (tenant/namespace), or all
// topics when namespace is empty.
func (a *Admin) ListTopics(ctx context.Context, namespace string) ([]TopicInfo, error) {
	path := "/admin/v1/topics"
	if namespace != "" {
		path += "?namespace=" + url.QueryEscape(namespace)
	}
	var ts []topicJSON
	if err := a.do(ctx, http.MethodGet, path, nil, &ts); err != nil {
		return nil, err
	}
	out := make([]TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = TopicInfo(t)
	}
	return out, nil
}

// TopicStats returns a topic's offsets, sizes and subscriptions.
func (a *Admin) TopicStats(ctx context.Context, topic string) (TopicStats, error) {
	var st TopicStats
	err := a.do(ctx, http.MethodGet, "/admin/v1/stats/topics/"+topicPath(topic), nil, &st)
	return st, err
}

type topicJSON struct {
	Name       string `json:"name"`
	Partitions int32  `json:"partitions"`
}

// topicPath escapes each part of a topic name for a URL path.
func topicPath(topic string) string {
	topic = strings.TrimPrefix(topic, "persistent://")
	parts := strings.Split(topic, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func (a *Admin) do(ctx context.Context, method, path string, in, out any) error {
	if a.err != nil {
		return fmt.Errorf("admin API: %w", a.err)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != nil {
		tok, err := a.token(ctx)
		if err != nil {
			return fmt.Errorf("admin API: token source: %w", err)
		}
		if err := checkToken(tok); err != nil {
			return fmt.Errorf("admin API: %w", err)
		}
		req.Header.Set(AuthorizationHeader, "Bearer "+tok)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API: reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin API: decoding response: %w", err)
		}
	}
	return nil
}
