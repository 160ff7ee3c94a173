package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes ParseSize accepts, RabbitMQ's spelling:
// kB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize reads a byte count: "1073741824", "512MiB", "50MB".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a byte count such as 1073741824, 512MiB or 50MB", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return n * mult, nil
}

// ParseWatermark reads a memory watermark. Text with a decimal point
// ("0.6", "1.0") is a fraction of total memory in [0, 1], returned with
// bytes -1; anything else is an absolute size in ParseSize's form,
// returned with fraction -1.
func ParseWatermark(s string) (fraction float64, bytes int64, err error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, ".") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > 1 || math.IsNaN(f) {
			return 0, 0, fmt.Errorf("%q: want a fraction of total memory between 0 and 1 (0.6) or a size (2GiB)", s)
		}
		return f, -1, nil
	}
	n, err := ParseSize(s)
	if err != nil {
		return 0, 0, err
	}
	return -1, n, nil
}

// MemoryLimitBytes resolves MemoryHighWatermark against total, the
// memory the process may use. ok is false for a fraction when total is
// unknown (0): the memory alarm cannot be placed.
func (c *Config) MemoryLimitBytes(total int64) (limit int64, ok bool) {
	f, n, err := ParseWatermark(c.MemoryHighWatermark)
	switch {
	case err != nil:
		return 0, false
	case n >= 0:
		return n, true
	case total <= 0:
		return 0, false
	}
	return int64(f * float64(total)), true
}
