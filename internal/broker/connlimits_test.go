package broker

import (
	"errors"
	"testing"
)

type fixedLimits map[string]int64 // kind+"/"+name -> max-connections

func (f fixedLimits) Limit(kind, name, key string) (int64, bool) {
	v, ok := f[kind+"/"+name]
	return v, ok && key == "max-connections"
}

func TestConnCountsSharedLimits(t *testing.T) {
	var cc ConnCounts
	l := fixedLimits{LimitUser + "/u": 2, LimitVhost + "/v": 3}
	if err := cc.Admit(l, "v", "u"); err != nil {
		t.Fatal(err)
	}
	if err := cc.Admit(l, "v", ""); err != nil { // anonymous: the vhost only
		t.Fatal(err)
	}
	if err := cc.Admit(l, "", "u"); err != nil { // a login on it
		t.Fatal(err)
	}
	var le *ConnLimitError
	if err := cc.Admit(l, "w", "u"); !errors.As(err, &le) || le.Kind != LimitUser || le.Max != 2 || le.Reason() != "user_max_connections" {
		t.Fatalf("a third of u: %v", err)
	}
	if err := cc.Admit(l, "v", "x"); err != nil {
		t.Fatal(err)
	}
	if err := cc.Admit(l, "v", "y"); !errors.As(err, &le) || le.Kind != LimitVhost || le.Reason() != "vhost_max_connections" {
		t.Fatalf("a fourth in v: %v", err)
	}
	cc.Leave("v", "u")
	if err := cc.Admit(l, "w", "u"); err != nil {
		t.Fatalf("u after one left: %v", err)
	}
	var none *ConnCounts
	if err := none.Admit(l, "v", "u"); err != nil {
		t.Fatal(err)
	}
	none.Leave("v", "u")
}
