package mgmt

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestUnauthorizedChallengeOnlyForNonScripts(t *testing.T) {
	e := &apiError{http.StatusUnauthorized, "not_authorised", "Login failed"}
	for _, tc := range []struct {
		xrw       string
		challenge bool
	}{{"", true}, {"XMLHttpRequest", false}} {
		r := httptest.NewRequest("GET", "/api/overview", nil)
		if tc.xrw != "" {
			r.Header.Set("X-Requested-With", tc.xrw)
		}
		w := httptest.NewRecorder()
		writeRequestError(w, r, e)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("X-Requested-With %q: status %d, want 401", tc.xrw, w.Code)
		}
		if got := w.Header().Get("WWW-Authenticate") != ""; got != tc.challenge {
			t.Errorf("X-Requested-With %q: challenge sent = %v, want %v", tc.xrw, got, tc.challenge)
		}
	}
}
