package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/magnetar-mq/magnetar/broker"
)

// Bundles and brokers:
//
//	GET  /admin/v1/brokers                                  live brokers ([]broker.BrokerInfo)
//	GET  /admin/v1/bundles/{tenant}/{ns}                    the namespace's bundles and owners ([]Bundle)
//	POST /admin/v1/bundles/{tenant}/{ns}/{range}/unload     move a bundle (UnloadResult)
//
// Any broker answers an unload: the owner unloads the bundle itself, any
// other broker forwards the request to the owner's admin address (once:
// a forwarded request that does not reach the owner fails with 421).

// forwardedHeader marks an unload forwarded to the bundle's owner.
const forwardedHeader = "X-Magnetar-Forwarded"

// Bundle is the JSON form of a bundle and its owner.
type Bundle struct {
	Namespace string `json:"namespace"`
	Range     string `json:"range"`
	// Owner is the owning broker's ID; empty when the bundle is unowned
	// (the next lookup of one of its topics assigns it).
	Owner           string `json:"owner"`
	OwnerNativeAddr string `json:"owner_native_addr,omitempty"`
	OwnerAdminAddr  string `json:"owner_admin_addr,omitempty"`
	AcquiredUnixMs  int64  `json:"acquired_unix_ms,omitempty"`
}

// UnloadResult is the answer to an unload.
type UnloadResult struct {
	Namespace     string `json:"namespace"`
	Range         string `json:"range"`
	PreviousOwner string `json:"previous_owner"`
	// NewOwner is the broker the bundle was assigned to after the unload.
	NewOwner string `json:"new_owner"`
	// TookMs is how long the owner took: closing the bundle's partitions,
	// flushing their cursors, releasing and reassigning the bundle.
	TookMs int64 `json:"took_ms"`
}

func (h *handler) listBrokers(w http.ResponseWriter, r *http.Request) {
	l, err := h.b.LiveBrokers(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (h *handler) listBundles(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("tenant") + "/" + r.PathValue("ns")
	st, err := h.b.Bundles(r.Context(), ns)
	if err != nil {
		h.fail(w, err)
		return
	}
	out := make([]Bundle, len(st))
	for i, s := range st {
		out[i] = Bundle{Namespace: s.Bundle.Namespace, Range: s.Bundle.Range(), Owner: s.Owner.ID,
			OwnerNativeAddr: s.Owner.NativeAddr, OwnerAdminAddr: s.Owner.AdminAddr, AcquiredUnixMs: s.AcquiredUnixMs}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) unloadBundle(w http.ResponseWriter, r *http.Request) {
	bd, err := broker.ParseBundle(r.PathValue("tenant")+"/"+r.PathValue("ns"), r.PathValue("range"))
	if err != nil {
		h.fail(w, err)
		return
	}
	start := time.Now()
	owner, err := h.b.UnloadBundle(r.Context(), bd)
	var noe *broker.NotOwnerError
	if errors.As(err, &noe) && noe.Owner.AdminAddr != "" && r.Header.Get(forwardedHeader) == "" {
		h.forwardUnload(w, r, noe.Owner.AdminAddr)
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	res := UnloadResult{Namespace: bd.Namespace, Range: bd.Range(), NewOwner: owner.ID, TookMs: time.Since(start).Milliseconds()}
	if owner.ID != "" {
		res.PreviousOwner = h.b.ID()
	}
	writeJSON(w, http.StatusOK, res)
}

// forwardUnload sends the unload to the owner's admin API and relays its
// answer.
func (h *handler) forwardUnload(w http.ResponseWriter, r *http.Request, adminAddr string) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s%s", adminAddr, r.URL.Path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		h.fail(w, err)
		return
	}
	req.Header.Set(forwardedHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, Error{Error: fmt.Sprintf("forwarding the unload to the owner at %s: %v", adminAddr, err)})
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || !json.Valid(body) {
		writeJSON(w, http.StatusBadGateway, Error{Error: fmt.Sprintf("the owner at %s answered %s", adminAddr, resp.Status)})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}
