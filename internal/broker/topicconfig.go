package broker

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults are the broker-wide values behind every topic config a topic
// has not set itself, as Sluice's configuration gives them (Kafka's
// "static broker config"). Configs altered at run time on the broker
// resource (BrokerConfigs) take precedence over them.
type Defaults struct {
	Partitions      int32
	SegmentBytes    int64
	SegmentAge      time.Duration
	Retention       time.Duration // negative: unlimited
	RetentionBytes  int64         // negative: unlimited
	MaxMessageBytes int
}

// ConfigType is a config's value type, as Kafka names them.
type ConfigType int8

const (
	TypeBoolean ConfigType = iota + 1
	TypeString
	TypeInt
	TypeShort
	TypeLong
	TypeDouble
	TypeList
)

// ConfigSource says where a config's value comes from, in Kafka's terms,
// from the weakest to the strongest.
type ConfigSource int8

const (
	// SourceDefault: the built-in default (Kafka's DEFAULT_CONFIG).
	SourceDefault ConfigSource = iota
	// SourceStaticBroker: Sluice's configuration (STATIC_BROKER_CONFIG).
	SourceStaticBroker
	// SourceDynamicBroker: altered at run time (DYNAMIC_BROKER_CONFIG; on
	// one node the per-broker and cluster-wide sets are one).
	SourceDynamicBroker
	// SourceTopic: set on the topic (DYNAMIC_TOPIC_CONFIG).
	SourceTopic
)

// ConfigEntry is one resolved config.
type ConfigEntry struct {
	Key, Value string
	Source     ConfigSource
	// IsDefault: the value is no one's explicit choice (SourceDefault).
	IsDefault bool
	ReadOnly  bool
	Type      ConfigType
	Doc       string
	// Synonyms are the places the value could come from that hold one,
	// strongest first, the entry's own first (Kafka's synonyms).
	Synonyms []ConfigEntry
}

// topicConfig is one topic config Sluice accepts: Kafka's name, type,
// default and validation, the broker config that supplies its default
// (Kafka's synonym; "" when there is none) and whether Sluice acts on it
// (docs/kafka-compatibility.md lists those it only stores).
type topicConfig struct {
	name   string
	typ    ConfigType
	broker string
	def    func(Defaults) string
	check  func(string) error
	doc    string
	inert  bool
}

const maxLong = "9223372036854775807"

func fixed(v string) func(Defaults) string { return func(Defaults) string { return v } }

// topicConfigs is the one list of topic configs: every one Apache Kafka
// 4.x accepts on a topic, sorted by name.
var topicConfigs = []topicConfig{
	{"cleanup.policy", TypeList, "log.cleanup.policy", fixed("delete"), listOf("delete", "compact"),
		"What happens to old segments: delete them (retention), compact them (the log cleaner keeps the last record per key), or both.", false},
	{"compression.gzip.level", TypeInt, "compression.gzip.level", fixed("-1"), gzipLevel,
		"Level of gzip compression when compression.type is gzip.", false},
	{"compression.lz4.level", TypeInt, "compression.lz4.level", fixed("9"), intIn(1, 17),
		"Level of lz4 compression when compression.type is lz4.", false},
	{"compression.type", TypeString, "compression.type", fixed("producer"), oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		"The codec batches are stored with: producer keeps what the producer sent; any other value makes the broker recompress batches on append.", false},
	{"compression.zstd.level", TypeInt, "compression.zstd.level", fixed("3"), intIn(-131072, 22),
		"Level of zstd compression when compression.type is zstd.", false},
	{"delete.retention.ms", TypeLong, "log.cleaner.delete.retention.ms", fixed("86400000"), intAtLeast(0),
		"How long the log cleaner keeps tombstones (and markers of transactions with no data left) of a compacted topic.", true},
	{"file.delete.delay.ms", TypeLong, "log.segment.delete.delay.ms", fixed("60000"), intAtLeast(0),
		"How long a deleted segment's files wait before removal. Sluice removes them at once.", true},
	{"flush.messages", TypeLong, "log.flush.interval.messages", fixed(maxLong), intAtLeast(1),
		"Force an fsync every this many messages. Sluice syncs by its own durability setting.", true},
	{"flush.ms", TypeLong, "log.flush.interval.ms", fixed(maxLong), intAtLeast(0),
		"Force an fsync at least this often. Sluice syncs by its own durability setting.", true},
	{"follower.replication.throttled.replicas", TypeList, "", fixed(""), throttledReplicas,
		"Replicas whose follower replication is throttled. One node: no replication to throttle.", true},
	{"index.interval.bytes", TypeInt, "log.index.interval.bytes", fixed("4096"), intIn(0, math.MaxInt32),
		"How often an offset index entry is added. Sluice's index has its own spacing.", true},
	{"leader.replication.throttled.replicas", TypeList, "", fixed(""), throttledReplicas,
		"Replicas whose leader replication is throttled. One node: no replication to throttle.", true},
	{"local.retention.bytes", TypeLong, "log.local.retention.bytes", fixed("-2"), intAtLeast(-2),
		"Local bytes kept under tiered storage. Sluice has no tiered storage.", true},
	{"local.retention.ms", TypeLong, "log.local.retention.ms", fixed("-2"), intAtLeast(-2),
		"Local time kept under tiered storage. Sluice has no tiered storage.", true},
	{"max.compaction.lag.ms", TypeLong, "log.cleaner.max.compaction.lag.ms", fixed(maxLong), intAtLeast(1),
		"Longest a record may stay uncompacted: the cleaner then runs whatever the dirty ratio.", true},
	{"max.message.bytes", TypeInt, "message.max.bytes", func(d Defaults) string { return strconv.Itoa(d.MaxMessageBytes) }, intIn(0, math.MaxInt32),
		"Largest record batch the topic accepts, after broker-side compression.", false},
	{"message.downconversion.enable", TypeBoolean, "", fixed("true"), boolean,
		"Accepted for compatibility; down-conversion does not exist in Kafka 4 nor in Sluice.", true},
	{"message.timestamp.after.max.ms", TypeLong, "log.message.timestamp.after.max.ms", fixed("3600000"), intAtLeast(0),
		"How far in the future a CreateTime timestamp may be. Not enforced by Sluice.", true},
	{"message.timestamp.before.max.ms", TypeLong, "log.message.timestamp.before.max.ms", fixed(maxLong), intAtLeast(0),
		"How far in the past a CreateTime timestamp may be. Not enforced by Sluice.", true},
	{"message.timestamp.type", TypeString, "log.message.timestamp.type", fixed("CreateTime"), oneOf("CreateTime", "LogAppendTime"),
		"CreateTime keeps the producer's timestamps; LogAppendTime makes the broker stamp each batch with the time it is appended.", false},
	{"min.cleanable.dirty.ratio", TypeDouble, "log.cleaner.min.cleanable.ratio", fixed("0.5"), doubleIn(0, 1),
		"Share of a compacted log that must be uncleaned before the cleaner runs.", true},
	{"min.compaction.lag.ms", TypeLong, "log.cleaner.min.compaction.lag.ms", fixed("0"), intAtLeast(0),
		"Shortest time a record stays uncompacted: the cleaner leaves segments with newer records alone.", true},
	{"min.insync.replicas", TypeInt, "min.insync.replicas", fixed("1"), intIn(1, math.MaxInt32),
		"Replicas that must acknowledge an acks=all write. Stored for the cluster; one node is always in sync.", true},
	{"preallocate", TypeBoolean, "log.preallocate", fixed("false"), boolean,
		"Preallocate segment files. Sluice does not.", true},
	{"remote.log.copy.disable", TypeBoolean, "", fixed("false"), boolean,
		"Stop copying to tiered storage. Sluice has no tiered storage.", true},
	{"remote.log.delete.on.disable", TypeBoolean, "", fixed("false"), boolean,
		"Delete tiered data when tiering is disabled. Sluice has no tiered storage.", true},
	{"remote.storage.enable", TypeBoolean, "", fixed("false"), remoteStorage,
		"Tiered storage for the topic. Sluice has none, so only false is accepted.", false},
	{"retention.bytes", TypeLong, "log.retention.bytes", func(d Defaults) string { return strconv.FormatInt(d.RetentionBytes, 10) }, intAtLeast(-1),
		"Most bytes a partition keeps before old segments are deleted; -1 for no limit.", false},
	{"retention.ms", TypeLong, "log.retention.ms", func(d Defaults) string { return durMs(d.Retention) }, intAtLeast(-1),
		"How long a segment is kept before deletion; -1 for ever.", false},
	{"segment.bytes", TypeInt, "log.segment.bytes", func(d Defaults) string { return strconv.FormatInt(d.SegmentBytes, 10) }, intIn(14, math.MaxInt32),
		"Size at which a new segment is rolled.", false},
	{"segment.index.bytes", TypeInt, "log.index.size.max.bytes", fixed("10485760"), intIn(4, math.MaxInt32),
		"Size of a segment's offset index. Sluice sizes its index itself.", true},
	{"segment.jitter.ms", TypeLong, "log.roll.jitter.ms", fixed("0"), intAtLeast(0),
		"Random jitter subtracted from segment.ms. Not applied by Sluice.", true},
	{"segment.ms", TypeLong, "log.roll.ms", func(d Defaults) string { return durMs(d.SegmentAge) }, intAtLeast(1),
		"Age at which a new segment is rolled.", false},
	{"sluice.forward.exchange", TypeString, "", fixed(""), anyString,
		"Sluice: an exchange every record produced to the topic is also published through, its key as routing key and its headers as AMQP headers (docs/amqp-compatibility.md, \"Topics forwarding to an exchange\"); empty: none.", false},
	{"sluice.forward.vhost", TypeString, "", fixed(""), anyString,
		"Sluice: the vhost of sluice.forward.exchange; empty: the vhost topics show in (kafka_vhost, \"/\").", false},
	{"unclean.leader.election.enable", TypeBoolean, "unclean.leader.election.enable", fixed("false"), boolean,
		"Let an out-of-sync replica become leader. Stored for the cluster; one node has no election.", true},
}

// topicConfigIndex finds a topic config by name.
var topicConfigIndex = func() map[string]*topicConfig {
	m := make(map[string]*topicConfig, len(topicConfigs))
	for i := range topicConfigs {
		m[topicConfigs[i].name] = &topicConfigs[i]
	}
	return m
}()

// brokerSynonyms maps a broker config name to the topic config it is
// the default of.
var brokerSynonyms = func() map[string]*topicConfig {
	m := make(map[string]*topicConfig)
	for i := range topicConfigs {
		if b := topicConfigs[i].broker; b != "" {
			m[b] = &topicConfigs[i]
		}
	}
	return m
}()

// InertTopicConfigs lists the accepted topic configs Sluice stores but
// does not act on, sorted.
func InertTopicConfigs() []string {
	var out []string
	for _, c := range topicConfigs {
		if c.inert {
			out = append(out, c.name)
		}
	}
	return out
}

// IsListConfig reports whether a topic or broker config's value is a
// comma-separated list (IncrementalAlterConfigs may APPEND to it).
func IsListConfig(key string) bool {
	if c, ok := topicConfigIndex[key]; ok {
		return c.typ == TypeList
	}
	if c, ok := brokerSynonyms[key]; ok {
		return c.typ == TypeList
	}
	return false
}

// CheckTopicConfig validates one topic config value, with Kafka's
// messages.
func CheckTopicConfig(key, value string) error {
	c, ok := topicConfigIndex[key]
	if !ok {
		return fmt.Errorf("%w: Unknown topic config name: %s", ErrInvalidConfig, key)
	}
	return c.validate(key, value)
}

func (c *topicConfig) validate(key, value string) error {
	if err := c.check(value); err != nil {
		return fmt.Errorf("%w: Invalid value %s for configuration %s: %v", ErrInvalidConfig, value, key, err)
	}
	return nil
}

// resolvedConfig is a topic's effective settings.
type resolvedConfig struct {
	retention       time.Duration
	retentionBytes  int64
	segmentBytes    int64
	segmentAge      time.Duration
	maxMessageBytes int
	compact         bool // cleanup.policy has compact
	deletes         bool // cleanup.policy has delete: retention applies
	// The cleaner's settings (cleaner.go), read only when compact is set.
	deleteRetention   time.Duration // delete.retention.ms: how long tombstones stay
	minCompactionLag  time.Duration // min.compaction.lag.ms
	maxCompactionLag  time.Duration // max.compaction.lag.ms
	minCleanableRatio float64       // min.cleanable.dirty.ratio
	// codec is the compression.type as a batch attribute codec (0 none,
	// 1 gzip, 2 snappy, 3 lz4, 4 zstd), -1 for producer.
	codec         int16
	codecLevel    int // the level config of codec
	logAppendTime bool
	// minInsync is min.insync.replicas: a replicated partition refuses an
	// acks=all produce with fewer replicas in sync (replica.go).
	minInsync int
}

// resolve computes a topic's settings from its own configs, the broker
// configs altered at run time (by broker config name) and d.
func resolve(d Defaults, dynamic, set map[string]string) resolvedConfig {
	// Values were checked as Kafka checks them, which trims spaces.
	get := func(k string) string {
		v, _ := resolveValue(d, dynamic, set, topicConfigIndex[k])
		return strings.TrimSpace(v)
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(get(k), 10, 64); return n }
	rc := resolvedConfig{
		retentionBytes:  num("retention.bytes"),
		segmentBytes:    num("segment.bytes"),
		maxMessageBytes: int(num("max.message.bytes")),
		logAppendTime:   get("message.timestamp.type") == "LogAppendTime",
		minInsync:       int(num("min.insync.replicas")),
	}
	if ms := num("retention.ms"); ms < 0 {
		rc.retention = -1
	} else {
		rc.retention = msDuration(ms)
	}
	rc.segmentAge = msDuration(num("segment.ms"))
	rc.deleteRetention = msDuration(num("delete.retention.ms"))
	rc.minCompactionLag = msDuration(num("min.compaction.lag.ms"))
	rc.maxCompactionLag = msDuration(num("max.compaction.lag.ms"))
	rc.minCleanableRatio, _ = strconv.ParseFloat(get("min.cleanable.dirty.ratio"), 64)
	policy := splitList(get("cleanup.policy"))
	ct := get("compression.type")
	rc.compact, rc.deletes = slices.Contains(policy, "compact"), slices.Contains(policy, "delete")
	switch ct {
	case "producer":
		rc.codec = -1
	case "uncompressed":
		rc.codec = 0
	case "gzip":
		rc.codec, rc.codecLevel = 1, int(num("compression.gzip.level"))
	case "snappy":
		rc.codec = 2
	case "lz4":
		rc.codec, rc.codecLevel = 3, int(num("compression.lz4.level"))
	case "zstd":
		rc.codec, rc.codecLevel = 4, int(num("compression.zstd.level"))
	}
	return rc
}

// resolveValue is the value of topic config c and its synonyms, strongest
// first: the topic's own, the broker's dynamic one, then the default.
func resolveValue(d Defaults, dynamic, set map[string]string, c *topicConfig) (string, []ConfigEntry) {
	var syn []ConfigEntry
	if v, ok := set[c.name]; ok {
		syn = append(syn, ConfigEntry{Key: c.name, Value: v, Source: SourceTopic})
	}
	if c.broker != "" {
		if v, ok := dynamic[c.broker]; ok {
			syn = append(syn, ConfigEntry{Key: c.broker, Value: v, Source: SourceDynamicBroker})
		}
		syn = append(syn, ConfigEntry{Key: c.broker, Value: c.def(d), Source: SourceDefault, IsDefault: true})
	} else {
		syn = append(syn, ConfigEntry{Key: c.name, Value: c.def(d), Source: SourceDefault, IsDefault: true})
	}
	return syn[0].Value, syn
}

// msDuration is ms milliseconds (>= 0), the longest Duration for more
// than it holds (Kafka's Long.MAX_VALUE "never" among them).
func msDuration(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

func durMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

func splitList(s string) []string {
	var out []string
	for _, it := range strings.Split(s, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func intIn(lo, hi int64) func(string) error {
	return func(s string) error {
		typ := "LONG"
		if hi <= math.MaxInt32 {
			typ = "INT"
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || typ == "INT" && (n > math.MaxInt32 || n < math.MinInt32) {
			return fmt.Errorf("Not a number of type %s", typ)
		}
		if n < lo {
			return fmt.Errorf("Value must be at least %d", lo)
		}
		if n > hi {
			return fmt.Errorf("Value must be no more than %d", hi)
		}
		return nil
	}
}

func intAtLeast(lo int64) func(string) error { return intIn(lo, math.MaxInt64) }

func doubleIn(lo, hi float64) func(string) error {
	return func(s string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("Not a number of type DOUBLE")
		}
		if f < lo {
			return fmt.Errorf("Value must be at least %v", lo)
		}
		if f > hi {
			return fmt.Errorf("Value must be no more than %v", hi)
		}
		return nil
	}
}

func boolean(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "false":
		return nil
	}
	return fmt.Errorf("Expected value to be either true or false")
}

func remoteStorage(s string) error {
	if err := boolean(s); err != nil {
		return err
	}
	if strings.EqualFold(strings.TrimSpace(s), "true") {
		return fmt.Errorf("Tiered Storage is not enabled on this broker")
	}
	return nil
}

// gzipLevel is Kafka's: 1 to 9, or -1 for the codec's default.
func gzipLevel(s string) error {
	if err := intIn(-1, 9)(s); err != nil {
		return err
	}
	if strings.TrimSpace(s) == "0" {
		return fmt.Errorf("Value must be between 1 and 9, or -1 for the default")
	}
	return nil
}

func anyString(string) error { return nil }

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		if slices.Contains(vals, strings.TrimSpace(s)) {
			return nil
		}
		return fmt.Errorf("String must be one of: %s", strings.Join(vals, ", "))
	}
}

// listOf checks a comma-separated list whose items are all in vals.
func listOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, it := range splitList(s) {
			if !slices.Contains(vals, it) {
				return fmt.Errorf("String must be one of: %s", strings.Join(vals, ", "))
			}
		}
		if len(splitList(s)) == 0 {
			return fmt.Errorf("Empty list is not allowed")
		}
		return nil
	}
}

// throttledReplicas checks Kafka's form: "*", or partition:broker pairs.
func throttledReplicas(s string) error {
	if strings.TrimSpace(s) == "*" {
		return nil
	}
	for _, it := range splitList(s) {
		p, b, ok := strings.Cut(it, ":")
		_, perr := strconv.ParseUint(strings.TrimSpace(p), 10, 31)
		_, berr := strconv.ParseUint(strings.TrimSpace(b), 10, 31)
		if !ok || perr != nil || berr != nil {
			return fmt.Errorf("must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")
		}
	}
	return nil
}
