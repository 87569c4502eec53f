package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/errmap"
)

// Topic is the JSON form of a topic.
type Topic struct {
	Name       string `json:"name"`
	Partitions int32  `json:"partitions"`
}

// CreateTopicRequest is the body of a create.
type CreateTopicRequest struct {
	Partitions int32 `json:"partitions"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

type handler struct {
	b   *broker.Broker
	log *slog.Logger
	// routes are the patterns registered, each behind a guard (handle).
	routes []string
}

// Register adds the admin routes to mux.
func Register(mux *http.ServeMux, b *broker.Broker, log *slog.Logger) { register(mux, b, log) }

func register(mux *http.ServeMux, b *broker.Broker, log *slog.Logger) *handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{b: b, log: log.With("component", "admin")}
	h.handle(mux, "GET /admin/v1/topics", filtered, h.listTopics)
	h.handle(mux, "PUT /admin/v1/topics/{name...}", onTopic(broker.ActionAdmin), h.createTopic)
	h.handle(mux, "GET /admin/v1/topics/{name...}", onTopic(anyAction), h.getTopic)
	h.handle(mux, "DELETE /admin/v1/topics/{name...}", onTopic(broker.ActionAdmin), h.deleteTopic)
	h.handle(mux, "GET /admin/v1/stats/topics/{name...}", onTopic(anyAction), h.topicStats)
	h.handle(mux, "GET /admin/v1/bookies", cluster, h.listBookies)
	h.handle(mux, "GET /admin/v1/shards", cluster, h.listShards)
	h.handle(mux, "GET /admin/v1/brokers", cluster, h.listBrokers)
	h.handle(mux, "GET /admin/v1/bundles/{tenant}/{ns}", tenantAdmin, h.listBundles)
	h.handle(mux, "POST /admin/v1/bundles/{tenant}/{ns}/{range}/unload", cluster, h.unloadBundle)
	registerTenants(mux, h)
	registerSubscriptions(mux, h)
	registerPermissions(mux, h)
	return h
}

// listBookies answers with the registered bookies (registry.BookieInfo).
func (h *handler) listBookies(w http.ResponseWriter, r *http.Request) {
	l, err := h.b.Bookies(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// listShards answers with the shards and their replicas (registry.ShardInfo).
func (h *handler) listShards(w http.ResponseWriter, r *http.Request) {
	l, err := h.b.Shards(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (h *handler) listTopics(w http.ResponseWriter, r *http.Request) {
	ts, err := h.b.ListTopics(r.Context(), r.URL.Query().Get("namespace"))
	if err != nil {
		h.fail(w, err)
		return
	}
	out := make([]Topic, 0, len(ts))
	for _, t := range ts {
		ok, err := allowed(h.b.AuthorizeTopic(r.Context(), t.Name, anyAction))
		if err != nil {
			h.fail(w, err)
			return
		}
		if ok {
			out = append(out, Topic{Name: t.Name.String(), Partitions: t.Partitions})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) createTopic(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	req := CreateTopicRequest{Partitions: 1}
	body, err := readAll(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			h.fail(w, fmt.Errorf("%w: request body: %v", broker.ErrInvalidArgument, err))
			return
		}
	}
	if err := h.b.CreateTopic(r.Context(), name, req.Partitions); err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, Topic{Name: name.String(), Partitions: req.Partitions})
}

func (h *handler) getTopic(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	info, err := h.b.Topic(r.Context(), name, false)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Topic{Name: name.String(), Partitions: info.Partitions})
}

func (h *handler) deleteTopic(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := h.b.DeleteTopic(r.Context(), name); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) topicStats(w http.ResponseWriter, r *http.Request) {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	st, err := h.b.TopicStats(r.Context(), name)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	code := errmap.HTTPStatus(err)
	if code >= 500 && !errors.Is(err, broker.ErrClosed) {
		h.log.Warn("admin request failed", "err", err)
	}
	writeJSON(w, code, Error{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
