package api_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"qjmz/api"
)

const specPath = "../docs/openapi.yaml"

// TestOpenAPIMatchesRouter keeps docs/openapi.yaml honest: the mini-program
// and console teams code against it, so a route missing from it, a documented
// route that does not exist, or a wrong statement about authentication is a
// bug they would hit.
func TestOpenAPIMatchesRouter(t *testing.T) {
	gin.SetMode(gin.TestMode)
	doc := loadSpec(t)
	engine := newTestRouter()

	routes := routerOperations(engine)
	documented := specOperations(doc)

	t.Run("every route is documented and every documented operation is routed", func(t *testing.T) {
		var undocumented, unrouted []string
		for op := range routes {
			if _, ok := documented[op]; !ok {
				undocumented = append(undocumented, op)
			}
		}
		for op := range documented {
			if _, ok := routes[op]; !ok {
				unrouted = append(unrouted, op)
			}
		}
		slices.Sort(undocumented)
		slices.Sort(unrouted)
		if len(undocumented) > 0 {
			t.Errorf("routes in api.NewRouter missing from %s:\n  %s", specPath, strings.Join(undocumented, "\n  "))
		}
		if len(unrouted) > 0 {
			t.Errorf("operations in %s that api.NewRouter does not serve:\n  %s", specPath, strings.Join(unrouted, "\n  "))
		}
	})

	t.Run("every operation declares a 2xx response", func(t *testing.T) {
		for _, op := range sortedKeys(documented) {
			codes := slices.Collect(maps.Keys(documented[op].Responses.Map()))
			if !slices.ContainsFunc(codes, func(code string) bool { return strings.HasPrefix(code, "2") }) {
				t.Errorf("%s: no 2xx response", op)
			}
		}
	})

	t.Run("authenticated operations declare 401", func(t *testing.T) {
		for _, op := range sortedKeys(documented) {
			if !strings.Contains(op, " /api/v1/") || !requiresAuth(doc, documented[op]) {
				continue
			}
			if documented[op].Responses.Value("401") == nil {
				t.Errorf("%s requires a bearer token but declares no 401 response", op)
			}
		}
	})

	t.Run("API errors use the Error schema and 429 carries Retry-After", func(t *testing.T) {
		for _, op := range sortedKeys(documented) {
			if !strings.Contains(op, " /api/v1/") {
				continue
			}
			for code, ref := range documented[op].Responses.Map() {
				if code < "400" || ref.Value == nil {
					continue
				}
				mt := ref.Value.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Error" {
					t.Errorf("%s %s: body is not application/json #/components/schemas/Error", op, code)
				}
				if code == "429" && ref.Value.Headers["Retry-After"] == nil {
					t.Errorf("%s 429: no Retry-After header", op)
				}
			}
		}
	})

	// The router is the authority on which routes need a token: an
	// anonymous request to a route behind requireAuth/requireRole is
	// answered 401 before any handler or service runs. Public routes reach
	// their handler, which fails some other way with the nil services here.
	t.Run("documented security matches the router", func(t *testing.T) {
		for _, op := range sortedKeys(routes) {
			if _, ok := documented[op]; !ok {
				continue // reported above
			}
			method, path, _ := strings.Cut(op, " ")
			if !strings.HasPrefix(path, "/api/v1/") {
				if requiresAuth(doc, documented[op]) {
					t.Errorf("%s: documented as needing a bearer token, but only /api/v1 authenticates; set `security: []`", op)
				}
				continue
			}
			rec := httptest.NewRecorder()
			engine.ServeHTTP(rec, httptest.NewRequest(method, concretePath(path), nil))
			routerAuth := rec.Code == http.StatusUnauthorized
			if docAuth := requiresAuth(doc, documented[op]); routerAuth != docAuth {
				t.Errorf("%s: router requires auth = %v (anonymous request got %d), spec says %v", op, routerAuth, rec.Code, docAuth)
			}
		}
	})
}

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not valid OpenAPI: %v", specPath, err)
	}
	return doc
}

// newTestRouter builds the real route table with the least that lets
// NewRouter run; Media is set so the embedded-mode /media routes exist.
func newTestRouter() *gin.Engine {
	return api.NewRouter(api.Deps{
		Config:   api.Config{MaxBodyBytes: 1 << 20, LoginRatePerMinute: 20, WriteRatePerMinute: 120},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(),
		Media:    http.NotFoundHandler(),
	})
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// routerOperations lists the engine's routes as "METHOD /path" in OpenAPI
// syntax (:id and *key become {id} and {key}).
func routerOperations(e *gin.Engine) map[string]struct{} {
	out := map[string]struct{}{}
	for _, r := range e.Routes() {
		out[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = struct{}{}
	}
	return out
}

func specOperations(doc *openapi3.T) map[string]*openapi3.Operation {
	out := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[strings.ToUpper(method)+" "+path] = op
		}
	}
	return out
}

// requiresAuth reports whether op's effective security demands a
// credential: its own `security`, else the document's; an empty
// requirement ({}) or an empty list makes it optional.
func requiresAuth(doc *openapi3.T, op *openapi3.Operation) bool {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	if len(reqs) == 0 {
		return false
	}
	for _, r := range reqs {
		if len(r) == 0 {
			return false
		}
	}
	return true
}

var specParam = regexp.MustCompile(`\{[^}]+\}`)

// concretePath fills path parameters with a well-formed ULID.
func concretePath(p string) string {
	return specParam.ReplaceAllString(p, "01M8A1WKTKA8VNEAZZVE1J5QZD")
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
