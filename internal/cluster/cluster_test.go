package cluster

import "testing"

func TestParsePeers(t *testing.T) {
	p, err := ParsePeers("1=127.0.0.1:9190, 2=127.0.0.1:9191,3=h:9192")
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 3 || p[2] != "127.0.0.1:9191" || p[3] != "h:9192" {
		t.Fatalf("parsed %v", p)
	}
	if got := FormatPeers(p); got != "1=127.0.0.1:9190,2=127.0.0.1:9191,3=h:9192" {
		t.Fatalf("formatted %q", got)
	}
	for _, bad := range []string{"x=h:1", "0=h:1", "1", "1=", "1=a:1,1=b:2", "4294967296=h:1"} {
		if _, err := ParsePeers(bad); err == nil {
			t.Errorf("ParsePeers(%q) accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{NodeID: 1, Peers: map[NodeID]string{1: "a:1", 2: "b:2"}, ClusterID: "c"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("a disabled config is valid: %v", err)
	}
	for _, bad := range []Config{
		{NodeID: 3, Peers: ok.Peers, ClusterID: "c"},
		{NodeID: 1, ClusterID: "c"},
		{NodeID: 1, Peers: ok.Peers},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
