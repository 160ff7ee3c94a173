package mgmt

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"time"

	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// Conversions between AMQP field tables and JSON.

// tableJSON renders a field table as JSON values. Never nil, so that it
// encodes as {} as RabbitMQ's do.
func tableJSON(t fieldtable.Table) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = valueJSON(v)
	}
	return out
}

func valueJSON(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case fieldtable.Table:
		return tableJSON(x)
	case map[string]any:
		return tableJSON(fieldtable.Table(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = valueJSON(e)
		}
		return out
	case fieldtable.Decimal:
		return float64(x.Value) / math.Pow10(int(x.Scale))
	case time.Time:
		return x.Unix()
	case float32:
		return float64(x)
	}
	return v
}

// jsonTable turns decoded JSON (numbers as json.Number) into a field
// table: integral numbers become int64 (as RabbitMQ's management plugin
// sends them to the broker, 'l'), others float64.
func jsonTable(m map[string]any) (fieldtable.Table, error) {
	if len(m) == 0 {
		return nil, nil
	}
	t := make(fieldtable.Table, len(m))
	for k, v := range m {
		fv, err := jsonValue(v)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %w", k, err)
		}
		t[k] = fv
	}
	return t, fieldtable.Validate(t)
}

func jsonValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		return x.Float64()
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		return x, nil
	case map[string]any:
		t, err := jsonTable(x)
		if t == nil {
			t = fieldtable.Table{}
		}
		return t, err
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			ev, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	case string, bool, nil:
		return x, nil
	}
	return nil, fmt.Errorf("unsupported JSON value %T", v)
}

// decodeArgs decodes stored arguments; undecodable ones show as empty.
func decodeArgs(b []byte) fieldtable.Table {
	if len(b) == 0 {
		return nil
	}
	t, _, err := fieldtable.Read(b)
	if err != nil {
		return nil
	}
	return t
}

// propertiesKey is a binding's identity in URLs, as RabbitMQ's: "~" for an
// empty routing key without arguments, the routing key (URL-escaped) when
// there are no arguments, else the routing key, "~" and a digest of the
// arguments.
func propertiesKey(routingKey string, args []byte) string {
	if len(bytes.TrimSpace(args)) == 0 {
		if routingKey == "" {
			return "~"
		}
		return url.PathEscape(routingKey)
	}
	sum := sha256.Sum256(args)
	return url.PathEscape(routingKey) + "~" + base64.RawURLEncoding.EncodeToString(sum[:9])
}
