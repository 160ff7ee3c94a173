package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.KafkaAddr != ":9092" || c.AMQPAddr != ":5672" || c.HTTPAddr != ":15672" || c.Fsync != "always" {
		t.Fatalf("unexpected defaults %+v", c)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.KafkaAddr = "nope"
	c.Fsync = "sometimes"
	c.DefaultPartitions = 0
	c.KafkaAnonymous = "everyone"
	c.KafkaSASLSessionLifetime = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"kafka_addr", "fsync", "default_partitions", "kafka_anonymous", "kafka_sasl_session_lifetime"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestAdvertisedAddr(t *testing.T) {
	for _, tc := range []struct{ listen, advertised, want string }{
		{":9092", "", "127.0.0.1:9092"},
		{"0.0.0.0:9093", "", "127.0.0.1:9093"},
		{"[::]:9093", "", "127.0.0.1:9093"},
		{"127.0.0.1:1234", "", "127.0.0.1:1234"},
		{"10.1.2.3:9092", "", "10.1.2.3:9092"},
		{":9092", "broker.example:19092", "broker.example:19092"},
	} {
		c := Default()
		c.KafkaAddr, c.KafkaAdvertisedAddr = tc.listen, tc.advertised
		if got := c.AdvertisedKafkaAddr(); got != tc.want {
			t.Errorf("listen %q advertised %q: got %q, want %q", tc.listen, tc.advertised, got, tc.want)
		}
	}
}

func TestFileThenEnvPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.conf")
	os.WriteFile(path, []byte("# comment\ndata_dir = /from/file\nfsync = interval\nfsync_interval = 250ms\nretention = -1ns\n"), 0o644)
	c := Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadEnv([]string{"SLUICE_DATA_DIR=/from/env", "SLUICE_AUTO_CREATE_TOPICS=false", "SLUICE_CONFIG=ignored", "OTHER=1"}); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/env" || c.Fsync != "interval" || c.FsyncInterval != 250*time.Millisecond || c.AutoCreateTopics || c.Retention >= 0 {
		t.Fatalf("got %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("no_such_key", "1"); err == nil {
		t.Fatal("unknown key accepted")
	}
	if err := c.LoadEnv([]string{"SLUICE_SEGMENT_BYTES=lots"}); err == nil {
		t.Fatal("bad number accepted")
	}
}

func TestEveryKeyRoundTrips(t *testing.T) {
	d := Default()
	for _, k := range Keys() {
		c := Config{}
		if err := c.Set(k, d.Get(k)); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if c.Get(k) != d.Get(k) {
			t.Fatalf("%s: %q after round trip, want %q", k, c.Get(k), d.Get(k))
		}
	}
}

func TestSizesAndWatermarks(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1073741824", 1 << 30}, {"512MiB", 512 << 20}, {"50MB", 50e6},
		{"2GiB", 2 << 30}, {"1 kB", 1000}, {"7B", 7},
	} {
		if got, err := ParseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5GB", "12XB", "99999999999TiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	c := Default()
	for _, tc := range []struct {
		watermark string
		total     int64
		want      int64
		ok        bool
	}{
		{"0.6", 1000, 600, true},
		{"1.0", 1000, 1000, true},
		{"0.4", 0, 0, false}, // total memory unknown
		{"2GiB", 0, 2 << 30, true},
		{"0", 1000, 0, true},
	} {
		c.MemoryHighWatermark = tc.watermark
		if got, ok := c.MemoryLimitBytes(tc.total); got != tc.want || ok != tc.ok {
			t.Errorf("%q of %d: %d %v, want %d %v", tc.watermark, tc.total, got, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{"1.5", "-0.1", "lots"} {
		c.MemoryHighWatermark = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "memory_high_watermark") {
			t.Errorf("watermark %q: %v", bad, err)
		}
	}
}
