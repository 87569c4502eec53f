package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/magnetar-mq/magnetar/broker"
	"github.com/magnetar-mq/magnetar/internal/auth"
)

// Authenticated wraps h so that every request proves a role with a, as the
// native listener's calls do: a bearer token in the Authorization header,
// or the verified client certificate of a TLS connection. The principal
// goes into the request's context, where the routes' guards and the
// broker's authorization read it. A request that fails is answered 401
// with a JSON Error and never reaches h.
func Authenticated(a *auth.Authenticator, h http.Handler) http.Handler {
	if !a.Required() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r.Header.Get("Authorization"), r.TLS)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="magnetar"`)
			writeJSON(w, http.StatusUnauthorized, Error{Error: err.Error()})
			return
		}
		h.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
	})
}

// A guard decides whether a request may reach its route, from the
// principal in its context (broker.Authorize*); every route has one.
type guard func(h *handler, r *http.Request) error

// cluster: superusers only.
func cluster(h *handler, r *http.Request) error { return h.b.AuthorizeCluster(r.Context()) }

// tenantAdmin: a superuser or an admin role of the {tenant} in the path.
func tenantAdmin(h *handler, r *http.Request) error {
	return h.b.AuthorizeTenant(r.Context(), r.PathValue("tenant"))
}

// onNamespace: any of need on the {tenant}/{ns} in the path.
func onNamespace(need broker.Action) guard {
	return func(h *handler, r *http.Request) error {
		ns, err := namespaceOf(r)
		if err != nil {
			return err
		}
		return h.b.AuthorizeNamespace(r.Context(), ns, need)
	}
}

// onTopic: any of need on the topic {name...} in the path.
func onTopic(need broker.Action) guard {
	return func(h *handler, r *http.Request) error {
		name, err := h.b.ParseTopic(r.PathValue("name"))
		if err != nil {
			return err
		}
		return h.b.AuthorizeTopic(r.Context(), name, need)
	}
}

// tenantAdminOfTopic: a superuser or an admin role of the tenant of the
// topic {name...} in the path (permission changes).
func tenantAdminOfTopic(h *handler, r *http.Request) error {
	name, err := h.b.ParseTopic(r.PathValue("name"))
	if err != nil {
		return err
	}
	return h.b.AuthorizeTenant(r.Context(), name.Tenant)
}

// filtered: the route lists what the principal may see; it checks each
// item itself.
func filtered(*handler, *http.Request) error { return nil }

// anyAction is what reading about a topic or namespace needs: any grant.
const anyAction = broker.ActionAll

// handle registers a route behind its guard.
func (h *handler) handle(mux *http.ServeMux, pattern string, g guard, fn http.HandlerFunc) {
	h.routes = append(h.routes, pattern)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := g(h, r); err != nil {
			h.fail(w, err)
			return
		}
		fn(w, r)
	})
}

// allowed reports whether err is nil, false for a refusal, and passes on
// other errors (the metadata store failed).
func allowed(err error) (bool, error) {
	if errors.Is(err, broker.ErrPermissionDenied) {
		return false, nil
	}
	return err == nil, err
}

// maxBodyBytes bounds an admin request's body.
const maxBodyBytes = 1 << 20

// readAll reads a request's body, refusing one over maxBodyBytes (413)
// rather than reading on or cutting it short.
func readAll(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: the request body is over %d bytes", broker.ErrMessageTooLarge, maxBodyBytes)
	}
	return body, err
}
