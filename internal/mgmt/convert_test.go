package mgmt

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-mq/sluice/internal/fieldtable"
)

func TestJSONArgumentsRoundTrip(t *testing.T) {
	var in map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"x-max-length": 10, "x-ratio": 0.5, "name": "a", "on": true, "nested": {"n": -3}, "list": [1, "b"]}`))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		t.Fatal(err)
	}
	tab, err := jsonTable(in)
	if err != nil {
		t.Fatal(err)
	}
	want := fieldtable.Table{"x-max-length": int64(10), "x-ratio": 0.5, "name": "a", "on": true,
		"nested": fieldtable.Table{"n": int64(-3)}, "list": []any{int64(1), "b"}}
	if !fieldtable.Equal(tab, want) {
		t.Fatalf("jsonTable = %#v, want %#v", tab, want)
	}
	back, _ := json.Marshal(tableJSON(tab))
	var again map[string]any
	json.Unmarshal(back, &again)
	if again["x-max-length"] != float64(10) || again["nested"].(map[string]any)["n"] != float64(-3) {
		t.Fatalf("tableJSON = %s", back)
	}
}

func TestPropertiesKey(t *testing.T) {
	for _, c := range []struct {
		rk   string
		args []byte
		want string
	}{
		{"", nil, "~"},
		{"run", nil, "run"},
		{"a b", nil, "a%20b"},
	} {
		if got := propertiesKey(c.rk, c.args); got != c.want {
			t.Errorf("propertiesKey(%q) = %q, want %q", c.rk, got, c.want)
		}
	}
	a := propertiesKey("k", []byte{0, 0, 0, 1, 'x'})
	b := propertiesKey("k", []byte{0, 0, 0, 1, 'y'})
	if a == b || !strings.HasPrefix(a, "k~") {
		t.Fatalf("keys with arguments: %q %q", a, b)
	}
}

func TestFlexibleScalars(t *testing.T) {
	var body struct {
		Durable *flexBool `json:"durable"`
		Count   flexInt   `json:"count"`
		Tags    tagList   `json:"tags"`
	}
	if err := json.Unmarshal([]byte(`{"durable":"false","count":"3","tags":"administrator, monitoring"}`), &body); err != nil {
		t.Fatal(err)
	}
	if body.Durable == nil || bool(*body.Durable) || body.Count != 3 || len(body.Tags) != 2 || body.Tags[1] != "monitoring" {
		t.Fatalf("%+v", body)
	}
	if err := json.Unmarshal([]byte(`{"durable":"maybe"}`), &body); err == nil {
		t.Fatal("a non-boolean durable was accepted")
	}
}

// FuzzRequestBodies feeds arbitrary bytes to the request-body decoders;
// none may panic, and an accepted argument table must encode.
func FuzzRequestBodies(f *testing.F) {
	f.Add([]byte(`{"durable":"true","arguments":{"x-max-length":5,"h":{"a":[1,2.5,"s",null]}}}`))
	f.Add([]byte(`{"routing_key":"k","payload":"aGk=","payload_encoding":"base64","properties":{"headers":{"x":1},"priority":"3","timestamp":1}}`))
	f.Add([]byte(`{"users":[{"name":"u","tags":["a"]}],"queues":[{"name":"q","vhost":"/","durable":"false"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var q queueBody
		if decodeBody(httptest.NewRequest("PUT", "/", bytes.NewReader(data)), &q) == nil {
			if tab, err := jsonTable(q.Arguments); err == nil {
				if _, err := fieldtable.Append(nil, tab); err != nil {
					t.Fatalf("accepted arguments do not encode: %v", err)
				}
			}
		}
		var p publishBody
		if decodeBody(httptest.NewRequest("POST", "/", bytes.NewReader(data)), &p) == nil {
			propertiesFromJSON(p.Properties)
		}
		var d definitions
		decodeBody(httptest.NewRequest("POST", "/", bytes.NewReader(data)), &d)
	})
}
