package mgmt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/meta"
)

// fakeMembership records calls and answers with err.
type fakeMembership struct {
	added   []string
	removed []uint64
	err     error
}

func (f *fakeMembership) AddNode(_ context.Context, id uint64, addr string) (string, error) {
	f.added = append(f.added, addr)
	return "learner", f.err
}

func (f *fakeMembership) RemoveNode(_ context.Context, id uint64) error {
	f.removed = append(f.removed, id)
	return f.err
}

// membershipAPI serves an API with an administrator "admin" and a
// monitoring user "mon"; do sends a request as user and returns the
// status and body.
func membershipAPI(t *testing.T, m Membership) func(user, method, path, body string) (int, string) {
	t.Helper()
	store, err := meta.Open(t.TempDir(), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for name, tag := range map[string]string{"admin": "administrator", "mon": "monitoring"} {
		u, err := broker.UserWithPassword(name, "pw", []string{tag})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(New(Options{Meta: store, NodeName: "sluice@here", Membership: m}))
	t.Cleanup(srv.Close)
	return func(user, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.SetBasicAuth(user, "pw")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
}

func TestMembershipEndpoints(t *testing.T) {
	f := &fakeMembership{}
	do := membershipAPI(t, f)
	if code, body := do("admin", "POST", "/api/cluster/nodes", `{"node_id":4,"cluster_addr":"10.0.0.4:9190"}`); code != 200 || !strings.Contains(body, `"role":"learner"`) {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, _ := do("admin", "DELETE", "/api/cluster/nodes/3", ""); code != 204 {
		t.Fatalf("remove: %d", code)
	}
	if len(f.added) != 1 || f.added[0] != "10.0.0.4:9190" || len(f.removed) != 1 || f.removed[0] != 3 {
		t.Fatalf("calls: added %v removed %v", f.added, f.removed)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/cluster/nodes", `{"node_id":0,"cluster_addr":"h:1"}`},
		{"POST", "/api/cluster/nodes", `{"node_id":2147483648,"cluster_addr":"h:1"}`},
		{"POST", "/api/cluster/nodes", `{"node_id":-1,"cluster_addr":"h:1"}`},
		{"POST", "/api/cluster/nodes", `{"node_id":4,"cluster_addr":"nowhere"}`},
		{"POST", "/api/cluster/nodes", `{"node_id":4}`},
		{"POST", "/api/cluster/nodes", `{"node_id":"x","cluster_addr":"h:1"}`},
		{"POST", "/api/cluster/nodes", `[`},
		{"DELETE", "/api/cluster/nodes/0", ""},
		{"DELETE", "/api/cluster/nodes/abc", ""},
	} {
		if code, body := do("admin", tc.method, tc.path, tc.body); code != 400 {
			t.Errorf("%s %s %s: %d %s, want 400", tc.method, tc.path, tc.body, code, body)
		}
	}
	if len(f.added) != 1 || len(f.removed) != 1 {
		t.Fatalf("bad requests reached the server: added %v removed %v", f.added, f.removed)
	}
	if code, _ := do("mon", "DELETE", "/api/cluster/nodes/3", ""); code != 401 {
		t.Errorf("a monitoring user removed a node: %d", code)
	}
	f.err = &MembershipError{Status: 409, Reason: "would leave no majority"}
	if code, body := do("admin", "DELETE", "/api/cluster/nodes/2", ""); code != 409 || !strings.Contains(body, "no majority") {
		t.Errorf("refused removal: %d %s", code, body)
	}
}

func TestMembershipOnSingleNode(t *testing.T) {
	do := membershipAPI(t, nil)
	if code, body := do("admin", "POST", "/api/cluster/nodes", `{"node_id":4,"cluster_addr":"h:1"}`); code != 404 || !strings.Contains(body, "not a node of a cluster") {
		t.Errorf("add on a single node: %d %s", code, body)
	}
}

// FuzzMembershipRequest: any add-node body or remove-node id is either
// refused with 400 or reaches the server with a valid node id and
// host:port address; nothing panics.
func FuzzMembershipRequest(f *testing.F) {
	store, err := meta.Open(f.TempDir(), meta.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	u, _ := broker.UserWithPassword("admin", "pw", []string{"administrator"})
	if err := store.PutUser(u); err != nil {
		f.Fatal(err)
	}
	fake := &fakeMembership{}
	api := New(Options{Meta: store, NodeName: "sluice@here", Membership: fake})
	f.Add(`{"node_id":4,"cluster_addr":"10.0.0.4:9190"}`, "4")
	f.Add(`{"node_id":1e3,"cluster_addr":"[::1]:1"}`, "2147483647")
	f.Add(`{"node_id":"4","cluster_addr":":"}`, "-1")
	f.Fuzz(func(t *testing.T, body, id string) {
		fake.added, fake.removed = nil, nil
		req := httptest.NewRequest("POST", "/api/cluster/nodes", strings.NewReader(body))
		req.SetBasicAuth("admin", "pw")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("add %q: %d", body, rec.Code)
		}
		if (rec.Code == 200) != (len(fake.added) == 1) {
			t.Fatalf("add %q: %d, calls %v", body, rec.Code, fake.added)
		}
		req = httptest.NewRequest("DELETE", "/api/cluster/nodes/x", nil)
		req.SetPathValue("id", id)
		req.URL.Path = "/api/cluster/nodes/" + url.PathEscape(id)
		req.SetBasicAuth("admin", "pw")
		rec = httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if len(fake.removed) == 1 && (fake.removed[0] == 0 || fake.removed[0] > 1<<31-1) {
			t.Fatalf("remove %q reached the server as %d", id, fake.removed[0])
		}
	})
}
