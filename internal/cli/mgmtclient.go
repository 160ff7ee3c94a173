package cli

// Shared setup of the admin commands (queue, exchange, binding,
// connection, user, vhost, permissions, definitions, status): a small
// client of the management HTTP API (internal/mgmt, docs/management-api.md)
// and the table / JSON output they share.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

const (
	defaultHTTP = "http://127.0.0.1:15672"
	httpEnv     = "SLUICE_HTTP"
	userEnv     = "SLUICE_USER"
	passwordEnv = "SLUICE_PASSWORD"
)

// mgmtFlags are the settings every admin command takes.
type mgmtFlags struct {
	http     string
	user     string
	password string
	vhost    string
	output   string
	tlsCA    string // trust these CA certificates for an https:// --http
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// register adds --http, --user, --password and --output (and --vhost if
// withVhost) to cmd as persistent flags.
func (f *mgmtFlags) register(cmd *cobra.Command, withVhost bool) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.http, "http", envOr(httpEnv, defaultHTTP),
		"management API base URL; credentials may be given in it, http://user:pass@host:port (env "+httpEnv+")")
	pf.StringVar(&f.user, "user", envOr(userEnv, "guest"), "management API user (env "+userEnv+")")
	pf.StringVar(&f.password, "password", envOr(passwordEnv, "guest"), "management API password (env "+passwordEnv+")")
	pf.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	pf.StringVar(&f.tlsCA, "tls-ca", os.Getenv(tlsCAEnv),
		"with an https:// --http, trust the CA certificates in this PEM file (env "+tlsCAEnv+")")
	if withVhost {
		pf.StringVar(&f.vhost, "vhost", "/", "the virtual host")
	}
}

// json reports whether --output json was asked for; an unknown format is
// an error.
func (f *mgmtFlags) json() (bool, error) {
	switch f.output {
	case "table", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("--output: %q is not table or json", f.output)
}

// apiError is an error answer of the API: {"error": ..., "reason": ...}.
type apiError struct {
	Status int
	Err    string `json:"error"`
	Reason string `json:"reason"`
}

func (e *apiError) Error() string {
	if e.Reason != "" {
		return e.Reason
	}
	if e.Err != "" {
		return e.Err
	}
	return fmt.Sprintf("HTTP %d", e.Status)
}

// isNotFound reports whether err is the API's 404.
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// pathEsc escapes one path segment the way the API expects ("/" → %2F).
func pathEsc(s string) string { return url.PathEscape(s) }

// do sends one request to the API and returns the status and body of a
// 2xx answer; any other answer is an *apiError.
// hdr are header name, value pairs.
func (f *mgmtFlags) do(ctx context.Context, method, path string, body any, hdr ...string) (int, []byte, error) {
	base, err := url.Parse(strings.TrimRight(f.http, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return 0, nil, fmt.Errorf("--http: %q is not an http:// URL", f.http)
	}
	user, pass := f.user, f.password
	if base.User != nil {
		user = base.User.Username()
		if p, ok := base.User.Password(); ok {
			pass = p
		}
		base.User = nil
	}
	var rd io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			rd = bytes.NewReader(raw)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				return 0, nil, err
			}
			rd = bytes.NewReader(b)
		}
	}
	// path is already escaped; parsing keeps %2F in RawPath.
	req, err := http.NewRequestWithContext(ctx, method, base.String()+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(user, pass)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client, err := f.client(base.Scheme)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, fmt.Errorf("no answer from %s within %v", f.http, adminTimeout)
		}
		return 0, nil, fmt.Errorf("cannot reach the management API at %s: %w", f.http, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || (ae.Err == "" && ae.Reason == "") {
			ae.Reason = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
		}
		return resp.StatusCode, data, ae
	}
	return resp.StatusCode, data, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call runs fn with a context bounded by adminTimeout and canceled on
// SIGINT.
func call[T any](fn func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := adminContext()
	defer cancel()
	return fn(ctx)
}

// send sends a request whose answer body does not matter.
func (f *mgmtFlags) send(method, path string, body any) (int, error) {
	return call(func(ctx context.Context) (int, error) {
		st, _, err := f.do(ctx, method, path, body)
		return st, err
	})
}

// sendWithHeader is send with one request header.
func (f *mgmtFlags) sendWithHeader(method, path, name, value string) (int, error) {
	return call(func(ctx context.Context) (int, error) {
		st, _, err := f.do(ctx, method, path, nil, name, value)
		return st, err
	})
}

// get fetches path and returns the raw JSON.
func (f *mgmtFlags) get(path string) (json.RawMessage, error) {
	return call(func(ctx context.Context) (json.RawMessage, error) {
		_, data, err := f.do(ctx, http.MethodGet, path, nil)
		return data, err
	})
}

// post sends body and returns the answer's raw JSON.
func (f *mgmtFlags) post(path string, body any) (json.RawMessage, error) {
	return call(func(ctx context.Context) (json.RawMessage, error) {
		_, data, err := f.do(ctx, http.MethodPost, path, body)
		return data, err
	})
}

// getInto fetches path and decodes it into v; it returns the raw JSON too.
func (f *mgmtFlags) getInto(path string, v any) (json.RawMessage, error) {
	raw, err := f.get(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("GET %s: unexpected answer: %w", path, err)
	}
	return raw, nil
}

// printJSON prints v (a json.RawMessage is re-indented) followed by a
// newline.
func printJSON(w io.Writer, v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes an aligned table: header cells, then rows.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			if r[i] == "" {
				r[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// list fetches a JSON array from path and prints it as a table (one row
// per object from row) or as the API's JSON.
func list[T any](cmd *cobra.Command, f *mgmtFlags, path string, header []string, row func(T) []string) error {
	asJSON, err := f.json()
	if err != nil {
		return err
	}
	var items []T
	raw, err := f.getInto(path, &items)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return table(cmd.OutOrStdout(), header, rows)
}

// vhostPath is "/api/<what>/<vhost>" for the --vhost flag, or "/api/<what>"
// across all vhosts with all.
func (f *mgmtFlags) vhostPath(what string, all bool) string {
	if all {
		return "/api/" + what
	}
	return "/api/" + what + "/" + pathEsc(f.vhost)
}

// argsFlag parses --argument key=value pairs into an arguments table:
// integer-looking values become numbers and true/false booleans, as
// x-max-length=10 needs.
func argsFlag(pairs []string) (map[string]any, error) {
	kvs, err := parseKV("argument", pairs)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, kv := range kvs {
		var v any = kv[1]
		var n json.Number
		if json.Unmarshal([]byte(kv[1]), &n) == nil && !strings.ContainsAny(kv[1], `"`) {
			v = n
		} else if kv[1] == "true" || kv[1] == "false" {
			v = kv[1] == "true"
		}
		out[kv[0]] = v
	}
	return out, nil
}

// str formats an API value for a table cell.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return fmt.Sprint(int64(x))
	case bool:
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = str(e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		if len(x) == 0 {
			return ""
		}
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// since formats a millisecond timestamp as a duration ago.
func since(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.Since(time.UnixMilli(ms)).Truncate(time.Second).String()
}

// client is the HTTP client for the API: the default one, or for an
// https:// URL with --tls-ca one that trusts that CA.
func (f *mgmtFlags) client(scheme string) (*http.Client, error) {
	if scheme != "https" || f.tlsCA == "" {
		return http.DefaultClient, nil
	}
	cfg, err := tlsClientConfig(f.tlsCA)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}
