package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// BrokerInfo is a live broker, as the admin API lists it.
type BrokerInfo struct {
	ID            string `json:"id"`
	NativeAddr    string `json:"native_addr"`
	KafkaAddr     string `json:"kafka_addr"`
	AdminAddr     string `json:"admin_addr"`
	StartedUnixMs int64  `json:"started_unix_ms"`
	Version       string `json:"version"`
	// Bundles counts the bundles it owns.
	Bundles int `json:"bundles"`
}

// BundleInfo is one bundle of a namespace (a range of the hash space of
// its topics' partitions) and the broker owning it.
type BundleInfo struct {
	Namespace string `json:"namespace"`
	// Range is the bundle's hash range, "xxxxxxxx-xxxxxxxx" (hex).
	Range string `json:"range"`
	// Owner is the owning broker's ID; "" when unowned.
	Owner           string `json:"owner"`
	OwnerNativeAddr string `json:"owner_native_addr,omitempty"`
	OwnerAdminAddr  string `json:"owner_admin_addr,omitempty"`
	AcquiredUnixMs  int64  `json:"acquired_unix_ms,omitempty"`
}

// UnloadResult says where an unloaded bundle went.
type UnloadResult struct {
	Namespace     string `json:"namespace"`
	Range         string `json:"range"`
	PreviousOwner string `json:"previous_owner"`
	NewOwner      string `json:"new_owner"`
	// TookMs is the owner's time to close the bundle's partitions, flush
	// their cursors and hand the bundle over.
	TookMs int64 `json:"took_ms"`
}

// ListBrokers returns the live brokers.
func (a *Admin) ListBrokers(ctx context.Context) ([]BrokerInfo, error) {
	var out []BrokerInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/brokers", nil, &out)
	return out, err
}

// ListBundles returns the bundles of a namespace (tenant/namespace) with
// their owners.
func (a *Admin) ListBundles(ctx context.Context, namespace string) ([]BundleInfo, error) {
	var out []BundleInfo
	err := a.do(ctx, http.MethodGet, "/admin/v1/bundles/"+namespacePath(namespace), nil, &out)
	return out, err
}

// UnloadBundle moves a bundle ("xxxxxxxx-xxxxxxxx") of a namespace off its
// owner: its topics become available on another broker.
func (a *Admin) UnloadBundle(ctx context.Context, namespace, rng string) (UnloadResult, error) {
	var out UnloadResult
	err := a.do(ctx, http.MethodPost, "/admin/v1/bundles/"+namespacePath(namespace)+"/"+url.PathEscape(rng)+"/unload", nil, &out)
	return out, err
}

func namespacePath(ns string) string {
	t, n, _ := strings.Cut(ns, "/")
	return url.PathEscape(t) + "/" + url.PathEscape(n)
}
