package test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The broker recompresses on append when a topic's compression.type is
// not producer: a franz-go consumer sees every batch in the topic's codec
// whatever the producer used, and kcat (librdkafka) reads them too.
func TestTopicCompressionTypeRecompresses(t *testing.T) {
	b := startBroker(t)
	codecs := map[string]uint8{"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	producers := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "snappy": kgo.SnappyCompression(), "zstd": kgo.ZstdCompression()}
	for topicCodec, want := range codecs {
		t.Run(topicCodec, func(t *testing.T) {
			topic := "recompress-" + topicCodec
			b.createTopic(t, topic, 1, map[string]*string{"compression.type": &topicCodec})
			var sent []string
			for name, codec := range producers {
				prod := b.client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
				var recs []*kgo.Record
				for i := range 50 {
					v := fmt.Sprintf("%s-%02d-%s", name, i, strings.Repeat("x", 100))
					sent = append(sent, v)
					recs = append(recs, &kgo.Record{Value: []byte(v)})
				}
				produceSync(t, prod, recs...)
			}
			cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := map[string]bool{}
			for _, r := range consumeN(t, cons, len(sent), 20*time.Second) {
				if c := r.Attrs.CompressionType(); c != want {
					t.Fatalf("record %d stored with codec %d, want %d (%s)", r.Offset, c, want, topicCodec)
				}
				got[string(r.Value)] = true
			}
			for _, v := range sent {
				if !got[v] {
					t.Fatalf("record %q lost", v[:10])
				}
			}
			needTool(t, kcatPath)
			out := b.kcat(t, "", "-C", "-t", topic, "-o", "beginning", "-e", "-f", "%s\n").must(t, b, "kcat consume "+topic)
			if n := strings.Count(out.Stdout, "\n"); n != len(sent) {
				t.Fatalf("kcat read %d records of %d", n, len(sent))
			}
		})
	}
}

// message.timestamp.type=LogAppendTime: the broker stamps each batch with
// the time it appends it, answers that time in the produce response, and
// consumers (franz-go, kcat) see it as every record's timestamp.
func TestLogAppendTime(t *testing.T) {
	b := startBroker(t)
	topic := "stamped"
	lat := "LogAppendTime"
	b.createTopic(t, topic, 1, map[string]*string{"message.timestamp.type": &lat})
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	before := time.Now().Add(-time.Second)
	res := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("a"), Timestamp: old}, &kgo.Record{Value: []byte("b"), Timestamp: old})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	inRange := func(ts time.Time) bool { return ts.After(before) && ts.Before(after) }
	// franz-go does not surface the produce response's LogAppendTime: ask
	// with a raw Produce.
	if lat := rawProduceLogAppendTime(t, b, topic); !inRange(time.UnixMilli(lat)) {
		t.Errorf("produce response LogAppendTime %d, want the append time", lat)
	}
	cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for _, r := range consumeN(t, cons, 3, 10*time.Second) {
		if r.Attrs.TimestampType() != 1 || !inRange(r.Timestamp) {
			t.Errorf("record %d: timestamp type %d at %v, want LogAppendTime (1) near now", r.Offset, r.Attrs.TimestampType(), r.Timestamp)
		}
	}
	// Offsets by time go by the append times: the first record at or
	// after a day past the producer's (2001) timestamps is the first one.
	los, err := b.admin(t).ListOffsetsAfterMilli(ctxT(t, 10*time.Second), old.Add(24*time.Hour).UnixMilli(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if lo, ok := los.Lookup(topic, 0); !ok || lo.Err != nil || lo.Offset != 0 {
		t.Errorf("offset for a 2001 timestamp: %+v, want 0", lo)
	}
	needTool(t, kcatPath)
	out := b.kcat(t, "", "-C", "-t", topic, "-o", "beginning", "-e", "-J").must(t, b, "kcat consume")
	lines := strings.Split(strings.TrimSpace(out.Stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("kcat read %d records:\n%s", len(lines), out.Stdout)
	}
	for _, l := range lines {
		var rec struct {
			TsType string `json:"tstype"`
			Ts     int64  `json:"ts"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.TsType != "logappend" || !inRange(time.UnixMilli(rec.Ts)) {
			t.Errorf("kcat saw %s", l)
		}
	}
}

// DescribeConfigs v4 answers each config's type and documentation and its
// synonyms; broker configs altered with IncrementalAlterConfigs are the
// defaults of topics without their own, apply at once (a topic's codec
// changes under its producer), and survive a restart.
func TestDescribeConfigsAndDynamicBrokerConfigs(t *testing.T) {
	b := startBroker(t)
	adm := b.admin(t)
	topic := "inherits"
	b.createTopic(t, topic, 1, nil)

	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), b.client(t))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]kmsg.ConfigType{}
	for _, c := range resp.Resources[0].Configs {
		types[c.Name] = c.ConfigType
		if c.Documentation == nil || *c.Documentation == "" || len(c.ConfigSynonyms) == 0 {
			t.Errorf("%s: documentation %v, synonyms %v", c.Name, c.Documentation, c.ConfigSynonyms)
		}
	}
	for name, want := range map[string]kmsg.ConfigType{
		"cleanup.policy": kmsg.ConfigTypeList, "retention.ms": kmsg.ConfigTypeLong, "max.message.bytes": kmsg.ConfigTypeInt,
		"min.cleanable.dirty.ratio": kmsg.ConfigTypeDouble, "preallocate": kmsg.ConfigTypeBoolean, "compression.type": kmsg.ConfigTypeString,
	} {
		if types[name] != want {
			t.Errorf("%s: type %v, want %v", name, types[name], want)
		}
	}
	if len(types) < 34 {
		t.Errorf("%d topic configs described, want every one of Kafka's", len(types))
	}

	zstd, lat := "zstd", "LogAppendTime"
	if _, err := adm.AlterBrokerConfigs(ctxT(t, 10*time.Second), []kadm.AlterConfig{
		{Name: "compression.type", Value: &zstd}, {Name: "log.message.timestamp.type", Value: &lat},
	}); err != nil {
		t.Fatal(err)
	}
	prod := b.client(t, kgo.DefaultProduceTopic(topic))
	produceSync(t, prod, &kgo.Record{Value: []byte("after the change")})
	check := func(when string) {
		t.Helper()
		cons := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		r := consumeN(t, cons, 1, 10*time.Second)[0]
		if r.Attrs.CompressionType() != 4 || r.Attrs.TimestampType() != 1 {
			t.Fatalf("%s: record stored with codec %d, timestamp type %d: the broker's defaults were not applied", when, r.Attrs.CompressionType(), r.Attrs.TimestampType())
		}
		rcs, err := adm.DescribeTopicConfigs(ctxT(t, 10*time.Second), topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := rcs.On(topic, nil)
		for _, c := range rc.Configs {
			if c.Key == "compression.type" && (c.MaybeValue() != "zstd" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig) {
				t.Fatalf("%s: topic compression.type %q from %v", when, c.MaybeValue(), c.Source)
			}
		}
	}
	check("at once")
	b.Stop()
	b.Restart()
	adm = b.admin(t)
	check("after a restart")
	brcs, err := adm.DescribeBrokerConfigs(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, rc := range brcs {
		for _, c := range rc.Configs {
			if (c.Key == "compression.type" || c.Key == "log.message.timestamp.type") && c.Source == kmsg.ConfigSourceDynamicBrokerConfig {
				found++
			}
		}
	}
	if found != 2 {
		t.Errorf("broker configs after restart: %d of 2 altered configs reported dynamic", found)
	}

	// Invalid and read-only broker configs are refused.
	bad, parts := "brotli", "9"
	for _, tc := range []struct {
		cfg  kadm.AlterConfig
		want string
	}{
		{kadm.AlterConfig{Name: "compression.type", Value: &bad}, "INVALID_CONFIG"},
		{kadm.AlterConfig{Name: "num.partitions", Value: &parts}, "INVALID_REQUEST"},
	} {
		rs, err := adm.AlterBrokerConfigs(ctxT(t, 10*time.Second), []kadm.AlterConfig{tc.cfg})
		if err == nil && len(rs) > 0 {
			err = rs[0].Err
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("alter %s: %v, want %s", tc.cfg.Name, err, tc.want)
		}
	}
}

// rawProduceLogAppendTime produces one record to partition 0 of topic with
// a hand-built Produce v8 and returns the response's LogAppendTime.
func rawProduceLogAppendTime(t *testing.T, b *broker, topic string) int64 {
	t.Helper()
	rec := kmsg.NewRecord()
	rec.Value = []byte("raw")
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // less its own (one-byte) length prefix
	batch := kmsg.NewRecordBatch()
	batch.Magic = 2
	batch.FirstTimestamp, batch.MaxTimestamp = 978_000_000_000, 978_000_000_000
	batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
	batch.NumRecords = 1
	batch.Records = rec.AppendTo(nil)
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))

	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(8)
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), b.client(t))
	if err != nil {
		t.Fatal(err)
	}
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		t.Fatalf("raw produce: error %d %v", sp.ErrorCode, sp.ErrorMessage)
	}
	return sp.LogAppendTime
}

// Every Kafka 4.x topic config set at creation by each Python admin
// client, described back, records read back recompressed and stamped
// LogAppendTime, invalid values refused; a broker config altered at run
// time becomes the default of topics (topic_configs.py).
func TestPythonEveryTopicConfig(t *testing.T) {
	for _, c := range []struct{ client, module string }{{"confluent", "confluent_kafka"}, {"kafka-python", "kafka"}} {
		t.Run(c.client, func(t *testing.T) {
			needPythonModule(t, c.module)
			b := startBroker(t)
			path, err := filepath.Abs(filepath.Join("python", "topic_configs.py"))
			if err != nil {
				t.Fatal(err)
			}
			r := runTool(t, 90*time.Second, "", python3Path, path, b.Kafka, c.client).must(t, b, "topic_configs.py "+c.client)
			t.Logf("%s", r.Stdout)
		})
	}
}
