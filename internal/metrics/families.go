package metrics

import (
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Families with a series per queue, partition, group or label value have
// none until the first of those exists, and a Prometheus registry leaves a
// family without series out of its answer. Alert rules, recording rules
// and dashboards are installed on a fresh broker, and tools that check
// them against a scrape (or list a target's metadata) must find every
// family: so each such family is declared here when its description is
// made, and Handler lists a declared family that has no series as its
// HELP and TYPE lines alone, which the text format allows.

var (
	declaredMu sync.Mutex
	declared   = map[string]*dto.MetricFamily{}
)

// declare records a family to list even without series. Declaring a name
// twice keeps the first.
func declare(name, help string, typ dto.MetricType) {
	declaredMu.Lock()
	defer declaredMu.Unlock()
	if _, ok := declared[name]; !ok {
		declared[name] = &dto.MetricFamily{Name: &name, Help: &help, Type: typ.Enum()}
	}
}

// histogramVec makes a histogram family with a child per label value and
// declares it.
func histogramVec(opts prometheus.HistogramOpts, labels []string) *prometheus.HistogramVec {
	declare(opts.Name, opts.Help, dto.MetricType_HISTOGRAM)
	return prometheus.NewHistogramVec(opts, labels)
}

// counterVec makes a counter family with a child per label value and
// declares it.
func counterVec(opts prometheus.CounterOpts, labels []string) *prometheus.CounterVec {
	declare(opts.Name, opts.Help, dto.MetricType_COUNTER)
	return prometheus.NewCounterVec(opts, labels)
}

// withDeclared adds an empty family for every declared family absent from
// mfs, keeping mfs sorted by name as Gather returns it.
func withDeclared(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	have := make(map[string]bool, len(mfs))
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	declaredMu.Lock()
	for name, mf := range declared {
		if !have[name] {
			mfs = append(mfs, mf)
		}
	}
	declaredMu.Unlock()
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return mfs
}

// serve answers a scrape: the registry's families and the declared ones,
// in the format the scraper asks for (text unless it asks for protobuf),
// gzipped when it accepts gzip.
func (m *Metrics) serve(w http.ResponseWriter, r *http.Request) {
	mfs, err := m.reg.Gather()
	if err != nil {
		http.Error(w, "gathering metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	mfs = withDeclared(mfs)
	format := expfmt.Negotiate(r.Header)
	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gz
	}
	enc := expfmt.NewEncoder(out, format)
	text := format.FormatType() == expfmt.TypeTextPlain
	for _, mf := range mfs {
		if len(mf.Metric) == 0 && text {
			err = writeEmptyText(out, mf)
		} else {
			// protobuf carries a family without series as it is
			err = enc.Encode(mf)
		}
		if err != nil {
			return // the scraper went away, or a family is malformed: the scrape fails
		}
	}
}

// writeEmptyText writes a family without series in the text format: its
// HELP and TYPE lines (the text encoder refuses families without series).
func writeEmptyText(w io.Writer, mf *dto.MetricFamily) error {
	help := strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(mf.GetHelp())
	_, err := io.WriteString(w, "# HELP "+mf.GetName()+" "+help+"\n# TYPE "+mf.GetName()+" "+strings.ToLower(mf.GetType().String())+"\n")
	return err
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip
// (and does not refuse it with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) != "gzip" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
