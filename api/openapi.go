package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"gopkg.in/yaml.v3"
)

// openAPIYAML is the description of this API (openapi.yaml), kept by hand
// next to the handlers and held to them by the tests: api's checks every
// route against it, and every end-to-end test of cmd/datarights validates
// its requests and answers against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

var openAPIDoc = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	doc, err := jsonValue(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return buf.Bytes(), nil
})

// jsonValue makes a decoded YAML value one that JSON can hold: every
// mapping's keys must be strings (a status code written 200 instead of
// "200" would decode as a number).
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			j, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			v[k] = j
		}
		return v, nil
	case map[any]any:
		return nil, fmt.Errorf("a mapping with a key that is not a string (quote it)")
	case []any:
		for i, e := range v {
			j, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			v[i] = j
		}
	}
	return v, nil
}

// OpenAPI returns the OpenAPI 3.1 description of the API as JSON: what
// GET /api/openapi.json serves.
func OpenAPI() ([]byte, error) { return openAPIDoc() }

var openAPIETag = sync.OnceValue(func() string {
	doc, _ := openAPIDoc()
	sum := sha256.Sum256(doc)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
})

// handleOpenAPI serves the description. It changes only with the binary,
// so caches may keep it for an hour and revalidate it by its ETag; it
// needs no token (it describes routes, never data).
func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := openAPIDoc()
	if err != nil {
		// openapi_test.go loads it: a bad file never ships.
		http.Error(w, "the API description is broken", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", openAPIETag())
	if match := r.Header.Get("If-None-Match"); match != "" && match == openAPIETag() {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(doc)
}
