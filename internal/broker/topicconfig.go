package broker

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Defaults are the broker-wide values behind every topic config a topic
// has not set itself.
type Defaults struct {
	Partitions      int32
	SegmentBytes    int64
	SegmentAge      time.Duration
	Retention       time.Duration // negative: unlimited
	RetentionBytes  int64         // negative: unlimited
	MaxMessageBytes int
}

// topicConfigKeys is the one list of topic configs Sluice understands:
// their default (from Defaults) and how a value is checked.
var topicConfigKeys = map[string]struct {
	def   func(Defaults) string
	check func(string) error
}{
	"retention.ms":           {func(d Defaults) string { return durMs(d.Retention) }, intAtLeast(-1)},
	"retention.bytes":        {func(d Defaults) string { return strconv.FormatInt(d.RetentionBytes, 10) }, intAtLeast(-1)},
	"segment.bytes":          {func(d Defaults) string { return strconv.FormatInt(d.SegmentBytes, 10) }, intAtLeast(14)},
	"segment.ms":             {func(d Defaults) string { return durMs(d.SegmentAge) }, intAtLeast(1)},
	"max.message.bytes":      {func(d Defaults) string { return strconv.Itoa(d.MaxMessageBytes) }, intAtLeast(0)},
	"cleanup.policy":         {func(Defaults) string { return "delete" }, oneOf("delete", "compact", "compact,delete", "delete,compact")},
	"message.timestamp.type": {func(Defaults) string { return "CreateTime" }, oneOf("CreateTime")},
	"compression.type":       {func(Defaults) string { return "producer" }, oneOf("producer")},
	"min.insync.replicas":    {func(Defaults) string { return "1" }, intAtLeast(1)},
}

// TopicConfigKeys lists every understood topic config, sorted.
func TopicConfigKeys() []string {
	keys := make([]string, 0, len(topicConfigKeys))
	for k := range topicConfigKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckTopicConfig validates one topic config value.
func CheckTopicConfig(key, value string) error {
	k, ok := topicConfigKeys[key]
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, key)
	}
	if err := k.check(value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, key, value, err)
	}
	return nil
}

// ConfigEntry is one resolved topic config.
type ConfigEntry struct {
	Key, Value string
	IsDefault  bool
}

// resolvedConfig is a topic's effective settings.
type resolvedConfig struct {
	retention       time.Duration
	retentionBytes  int64
	segmentBytes    int64
	segmentAge      time.Duration
	maxMessageBytes int
	compact         bool
}

func resolve(d Defaults, set map[string]string) resolvedConfig {
	get := func(k string) string {
		if v, ok := set[k]; ok {
			return v
		}
		return topicConfigKeys[k].def(d)
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(get(k), 10, 64); return n }
	rc := resolvedConfig{
		retentionBytes:  num("retention.bytes"),
		segmentBytes:    num("segment.bytes"),
		maxMessageBytes: int(num("max.message.bytes")),
	}
	if ms := num("retention.ms"); ms < 0 {
		rc.retention = -1
	} else {
		rc.retention = time.Duration(ms) * time.Millisecond
	}
	rc.segmentAge = time.Duration(num("segment.ms")) * time.Millisecond
	p := get("cleanup.policy")
	rc.compact = p != "delete"
	return rc
}

func durMs(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

func intAtLeast(min int64) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v {
				return nil
			}
		}
		return fmt.Errorf("must be one of %v", vals)
	}
}
