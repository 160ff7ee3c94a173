package config

import (
	"strings"
	"testing"
)

func TestTLSListenersOffByDefault(t *testing.T) {
	c := Default()
	if c.TLSOn() {
		t.Fatal("a TLS listener is on by default")
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestTLSSettingsValidated(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]string
		want string // in the error; "" for none
	}{
		{map[string]string{"amqps_addr": ":5671"}, "tls_cert and tls_key"},
		{map[string]string{"https_addr": "nonsense"}, "https_addr"},
		{map[string]string{"kafka_tls_addr": ":9093", "tls_cert": "c", "tls_key": "k", "tls_client_auth": "require"}, "needs tls_ca"},
		{map[string]string{"tls_client_auth": "maybe"}, "tls_client_auth"},
		{map[string]string{"kafka_tls_addr": ":9093", "kafka_tls_advertised_addr": "9093"}, "kafka_tls_advertised_addr"},
		{map[string]string{"kafka_tls_addr": ":9093", "tls_cert": "c", "tls_key": "k", "tls_ca": "ca", "tls_client_auth": "request"}, ""},
	} {
		c := Default()
		for k, v := range tc.set {
			if err := c.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.set, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one about %s", tc.set, err, tc.want)
		}
	}
}

func TestKafkaTLSAdvertisedAddr(t *testing.T) {
	c := Default()
	c.KafkaTLSAddr = ":9093"
	if got := c.AdvertisedKafkaTLSAddr(); got != "127.0.0.1:9093" {
		t.Fatalf("advertised %q", got)
	}
	c.KafkaTLSAdvertisedAddr = "kafka.example:19093"
	if got := c.AdvertisedKafkaTLSAddr(); got != "kafka.example:19093" {
		t.Fatalf("advertised %q", got)
	}
}
