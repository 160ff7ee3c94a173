package broker

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCheckTopicConfig(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		wantErr    string // "" for valid
	}{
		{"cleanup.policy", "compact,delete", ""},
		{"cleanup.policy", "compact, delete", ""},
		{"cleanup.policy", "shred", "String must be one of: delete, compact"},
		{"compression.type", "snappy", ""},
		{"compression.type", "brotli", "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"},
		{"compression.gzip.level", "0", "between 1 and 9"},
		{"compression.gzip.level", "-1", ""},
		{"compression.zstd.level", "23", "Value must be no more than 22"},
		{"delete.retention.ms", "-1", "Value must be at least 0"},
		{"flush.messages", "9223372036854775807", ""},
		{"flush.ms", "soon", "Not a number of type LONG"},
		{"index.interval.bytes", "4294967296", "Not a number of type INT"},
		{"follower.replication.throttled.replicas", "0:1,1:1", ""},
		{"follower.replication.throttled.replicas", "*", ""},
		{"leader.replication.throttled.replicas", "0-1", "[partitionId]:[brokerId]"},
		{"local.retention.ms", "-2", ""},
		{"message.downconversion.enable", "false", ""},
		{"message.timestamp.type", "LogAppendTime", ""},
		{"message.timestamp.type", "AppendTime", "String must be one of: CreateTime, LogAppendTime"},
		{"min.cleanable.dirty.ratio", "0.1", ""},
		{"min.cleanable.dirty.ratio", "1.5", "Value must be no more than 1"},
		{"preallocate", "yes", "Expected value to be either true or false"},
		{"remote.storage.enable", "true", "Tiered Storage is not enabled"},
		{"unclean.leader.election.enable", "TRUE", ""},
		{"retention.ms", "-2", "Value must be at least -1"},
		{"no.such.config", "1", "Unknown topic config name: no.such.config"},
	} {
		err := CheckTopicConfig(tc.key, tc.value)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s=%s: %v", tc.key, tc.value, err)
		case tc.wantErr != "" && (err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s=%s: error %v, want INVALID_CONFIG with %q", tc.key, tc.value, err, tc.wantErr)
		}
	}
	// Every default passes its own check.
	for _, c := range topicConfigs {
		if v := c.def(Defaults{MaxMessageBytes: 1 << 20, SegmentBytes: 1 << 30, SegmentAge: time.Hour, Retention: -1, RetentionBytes: -1}); c.check(v) != nil {
			t.Errorf("%s: default %q refused: %v", c.name, v, c.check(v))
		}
	}
}

// A dynamic broker config is the default of topics that do not set their
// own; a topic's own value wins.
func TestResolveDynamicBrokerConfig(t *testing.T) {
	d := Defaults{Retention: -1, RetentionBytes: -1, SegmentBytes: 1 << 30, SegmentAge: 1, MaxMessageBytes: 1 << 20}
	dyn := map[string]string{"log.retention.ms": "60000", "compression.type": "zstd", "log.message.timestamp.type": "LogAppendTime"}
	rc := resolve(d, dyn, nil)
	if rc.retention.Milliseconds() != 60000 || rc.codec != 4 || rc.codecLevel != 3 || !rc.logAppendTime {
		t.Errorf("resolved %+v", rc)
	}
	rc = resolve(d, dyn, map[string]string{"retention.ms": "-1", "compression.type": "producer", "message.timestamp.type": "CreateTime"})
	if rc.retention >= 0 || rc.codec != -1 || rc.logAppendTime {
		t.Errorf("topic's own configs lost: %+v", rc)
	}
	_, syn := resolveValue(d, dyn, map[string]string{"retention.ms": "5"}, topicConfigIndex["retention.ms"])
	if len(syn) != 3 || syn[0].Source != SourceTopic || syn[1].Source != SourceDynamicBroker || syn[1].Key != "log.retention.ms" || syn[2].Source != SourceDefault {
		t.Errorf("synonyms %+v", syn)
	}
}

// docs/kafka-compatibility.md names every topic config Sluice accepts but
// does not act on.
func TestInertConfigsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/kafka-compatibility.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, k := range InertTopicConfigs() {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/kafka-compatibility.md does not list the inert config %s", k)
		}
	}
}

// A dynamic broker config applies at once to the open partitions of every
// topic without its own value, including one being created meanwhile.
func TestAlterBrokerConfigs(t *testing.T) {
	b, _ := newCore(t)
	if _, err := b.CreateTopic("plain", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateTopic("own", 1, map[string]string{"compression.type": "lz4"}, false); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := b.CreateTopic("racing", 1, nil, false)
		done <- err
	}()
	if err := b.AlterBrokerConfigs(map[string]string{"compression.type": "gzip", "log.message.timestamp.type": "LogAppendTime"}, nil, false, false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]int16{"plain": 1, "own": 3, "racing": 1} {
		tp, _ := b.Topic(topic)
		for _, p := range tp.Partitions {
			if f := p.stored.Load(); f.codec != want || !f.logAppendTime {
				t.Errorf("%s-%d: stored form %+v, want codec %d with LogAppendTime", topic, p.Index, f, want)
			}
		}
	}
	for _, set := range []map[string]string{
		{"compression.type": "brotli"}, {"num.partitions": "3"}, {"no.such": "1"},
	} {
		if err := b.AlterBrokerConfigs(set, nil, false, false); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("alter %v: %v, want ErrInvalidConfig", set, err)
		}
	}
	// Back to the defaults.
	if err := b.AlterBrokerConfigs(nil, nil, true, false); err != nil {
		t.Fatal(err)
	}
	tp, _ := b.Topic("plain")
	if f := tp.Partitions[0].stored.Load(); f.codec != -1 || f.logAppendTime {
		t.Errorf("after replace with nothing: %+v", f)
	}
}

// Values resolve as they validate: spaces trimmed, and "never" (Kafka's
// Long.MAX_VALUE) as the longest duration, not an overflow.
func TestResolveTrimsAndSaturates(t *testing.T) {
	set := map[string]string{"retention.ms": " 3600000 ", "segment.ms": "9223372036854775807", "compression.type": " zstd", "message.timestamp.type": "LogAppendTime "}
	for k, v := range set {
		if err := CheckTopicConfig(k, v); err != nil {
			t.Fatalf("%s=%q: %v", k, v, err)
		}
	}
	rc := resolve(Defaults{}, nil, set)
	if rc.retention != time.Hour || rc.segmentAge <= 0 || rc.codec != 4 || !rc.logAppendTime {
		t.Errorf("resolved %+v", rc)
	}
}
