package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServesPageAndAssets(t *testing.T) {
	h := Handler()
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `<script type="module" src="js/app.js">`},
		{"/index.html", "text/html", "<title>Sluice console</title>"},
		{"/app.css", "text/css", "--accent"},
		{"/js/app.js", "javascript", "function route()"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		w := get(t, h, tc.path, nil)
		if w.Code != 200 {
			t.Fatalf("%s: status %d", tc.path, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, tc.ctype) {
			t.Errorf("%s: Content-Type %q, want %s", tc.path, ct, tc.ctype)
		}
		if !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("%s: body lacks %q", tc.path, tc.contains)
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", tc.path)
		}
		if w := get(t, h, tc.path, map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
			t.Errorf("%s: revalidation with its ETag: status %d, want 304", tc.path, w.Code)
		}
	}
	if w := get(t, h, "/nope.js", nil); w.Code != 404 {
		t.Errorf("unknown asset: status %d, want 404", w.Code)
	}
	if csp := get(t, h, "/", nil).Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("page CSP %q does not restrict scripts to the console's own", csp)
	}
}

// Every module the scripts import must be embedded: a missing file would
// only show up as a blank page in the browser.
func TestEveryImportedModuleIsEmbedded(t *testing.T) {
	web, _ := fs.Sub(files, "web")
	imp := regexp.MustCompile(`from '\./([a-z0-9_-]+\.js)'`)
	n := 0
	fs.WalkDir(web, "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(web, p)
		for _, m := range imp.FindAllStringSubmatch(string(b), -1) {
			n++
			if _, err := fs.Stat(web, "js/"+m[1]); err != nil {
				t.Errorf("%s imports %s, which is not embedded", p, m[1])
			}
		}
		return nil
	})
	if n == 0 {
		t.Fatal("found no imports at all; the pattern is out of date")
	}
}
