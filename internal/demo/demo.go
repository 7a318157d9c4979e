// Package demo is Parley's browser demo: a chat page in plain HTML and
// JavaScript modules (no build step), embedded in the binary and served by
// `parley demo` on an origin of its own, calling the API at another origin
// (CORS, stream tickets) the way a real frontend would.
package demo

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ParseAPI checks that api is the absolute http(s) URL of a Parley API,
// without path, query or fragment, and returns it without a trailing slash.
func ParseAPI(api string) (string, error) {
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", api)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q: give the API's origin only, like http://localhost:8080", api)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Handler serves the demo page at / and its scripts and styles beside it;
// the page calls the API at api (see ParseAPI).
func Handler(api string) (http.Handler, error) {
	api, err := ParseAPI(api)
	if err != nil {
		return nil, err
	}
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("demo files: %w", err)
	}
	tmpl, err := template.ParseFS(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("parse index.html: %w", err)
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, struct{ API string }{api}); err != nil {
		return nil, fmt.Errorf("render index.html: %w", err)
	}
	// The page may talk to its own origin and the API only, runs no inline
	// script, and loads images (the favicon, emoji) from data: URLs.
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src 'self' " + api,
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
	assets := http.FileServerFS(files)
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change only with the binary: revalidate every time,
		// so a rebuilt demo is never mixed with a cached module.
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/", "/index.html":
			h.Set("Content-Type", "text/html; charset=utf-8")
			http.ServeContent(w, r, "index.html", started, bytes.NewReader(page.Bytes()))
		default:
			assets.ServeHTTP(w, r)
		}
	}), nil
}
