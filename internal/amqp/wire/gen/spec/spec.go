// Package spec loads RabbitMQ's AMQP 0-9-1 JSON specification and renders
// the Go source of package wire's generated codecs (methods_gen.go).
//
// It lives in its own package, not in the generator's main package, so that
// wire's tests can run the same code path into memory and fail when the
// checked-in file drifts from the specification.
package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"strings"
)

// Spec is the subset of the JSON specification the generator uses.
type Spec struct {
	Domains   [][2]string `json:"domains"`
	Constants []Constant  `json:"constants"`
	Classes   []Class     `json:"classes"`
}

// Constant is a named protocol constant; Class is "soft-error",
// "hard-error" or empty.
type Constant struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
	Class string `json:"class"`
}

// Class is an AMQP class with its methods and content properties.
type Class struct {
	ID         int        `json:"id"`
	Name       string     `json:"name"`
	Methods    []Method   `json:"methods"`
	Properties []Argument `json:"properties"`
}

// Method is one method of a class.
type Method struct {
	ID          int        `json:"id"`
	Name        string     `json:"name"`
	Synchronous bool       `json:"synchronous"`
	Content     bool       `json:"content"`
	Arguments   []Argument `json:"arguments"`
}

// Argument is a method argument or content property; exactly one of Type
// and Domain is set.
type Argument struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Domain string `json:"domain"`
}

// Load parses the JSON specification.
func Load(data []byte) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	if len(s.Classes) == 0 {
		return nil, fmt.Errorf("spec: no classes")
	}
	return &s, nil
}

// goType describes how one AMQP base type is held and coded.
type goType struct {
	goName string // Go field type
	read   string // Reader method
	append string // format with %s = field expression, appending to dst
}

var baseTypes = map[string]goType{
	"octet":     {"uint8", "Uint8", "dst = append(dst, %s)"},
	"short":     {"uint16", "Uint16", "dst = binary.BigEndian.AppendUint16(dst, %s)"},
	"long":      {"uint32", "Uint32", "dst = binary.BigEndian.AppendUint32(dst, %s)"},
	"longlong":  {"uint64", "Uint64", "dst = binary.BigEndian.AppendUint64(dst, %s)"},
	"shortstr":  {"string", "ShortStr", "dst = appendShortStr(dst, %s)"},
	"longstr":   {"string", "LongStr", "dst = appendLongStr(dst, %s)"},
	"timestamp": {"time.Time", "Timestamp", "dst = appendTimestamp(dst, %s)"},
	"table":     {"fieldtable.Table", "Table", "dst = appendTable(dst, %s)"},
	"bit":       {"bool", "", ""},
}

// zeroTest is the Go expression, per base type, that is true when a content
// property holds its zero value (and so is absent unless its flag is set).
var zeroTest = map[string]string{
	"octet":     "%s != 0",
	"short":     "%s != 0",
	"long":      "%s != 0",
	"longlong":  "%s != 0",
	"shortstr":  `%s != ""`,
	"longstr":   `%s != ""`,
	"timestamp": "!%s.IsZero()",
	"table":     "len(%s) != 0",
}

// fieldOverrides fixes names whose spelling in the specification is one
// word but reads as two in Go.
var fieldOverrides = map[string]string{"nowait": "NoWait"}

// camel turns "routing-key" into "RoutingKey". With initialisms, "id" parts
// become "ID" as Go style asks; method arguments keep "Id" (ClassId,
// MethodId) because ClassID and MethodID are already methods of every
// method struct.
func camel(name string, initialisms bool) string {
	if o, ok := fieldOverrides[name]; ok {
		return o
	}
	var b strings.Builder
	for part := range strings.SplitSeq(name, "-") {
		if part == "" {
			continue
		}
		if initialisms && part == "id" {
			b.WriteString("ID")
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

type generator struct {
	spec    *Spec
	domains map[string]string
	buf     bytes.Buffer
}

func (g *generator) p(format string, args ...any) {
	fmt.Fprintf(&g.buf, format, args...)
	g.buf.WriteByte('\n')
}

// base resolves an argument's domain to its base type.
func (g *generator) base(a Argument) (string, error) {
	t := a.Type
	if t == "" {
		d, ok := g.domains[a.Domain]
		if !ok {
			return "", fmt.Errorf("argument %s: unknown domain %q", a.Name, a.Domain)
		}
		t = d
	}
	if _, ok := baseTypes[t]; !ok {
		return "", fmt.Errorf("argument %s: unsupported type %q", a.Name, t)
	}
	return t, nil
}

// Generate renders methods_gen.go for package wire from s.
func Generate(s *Spec) ([]byte, error) {
	g := &generator{spec: s, domains: make(map[string]string)}
	for _, d := range s.Domains {
		g.domains[d[0]] = d[1]
	}
	g.constants()
	g.classIDs()
	for _, c := range s.Classes {
		for _, m := range c.Methods {
			if err := g.method(c, m); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", c.Name, m.Name, err)
			}
		}
	}
	g.registry()
	for _, c := range s.Classes {
		if len(c.Properties) > 0 {
			if err := g.properties(c); err != nil {
				return nil, fmt.Errorf("%s properties: %w", c.Name, err)
			}
		}
	}
	body := g.buf.String()
	var src strings.Builder
	src.WriteString("// Code generated by go run ./gen from the AMQP 0-9-1 JSON specification; DO NOT EDIT.\n\n")
	src.WriteString("package wire\n\nimport (\n")
	for _, imp := range []struct{ path, use string }{
		{"encoding/binary", "binary."},
		{"time", "time."},
		{"", ""}, // standard library above, module below
		{"github.com/sluice-mq/sluice/internal/fieldtable", "fieldtable."},
	} {
		if imp.path == "" {
			src.WriteString("\n")
		} else if strings.Contains(body, imp.use) {
			fmt.Fprintf(&src, "%q\n", imp.path)
		}
	}
	src.WriteString(")\n\n")
	src.WriteString(body)
	out, err := format.Source([]byte(src.String()))
	if err != nil {
		return nil, fmt.Errorf("formatting generated code: %w", err)
	}
	return out, nil
}

func (g *generator) constants() {
	var frame, reply []Constant
	for _, c := range g.spec.Constants {
		// FRAME-ERROR is a reply code: it has an error class.
		if c.Class != "" || strings.HasPrefix(c.Name, "REPLY-") {
			reply = append(reply, c)
		} else {
			frame = append(frame, c)
		}
	}
	g.p("// Frame types and framing limits.")
	g.p("const (")
	for _, c := range frame {
		g.p("%s = %d", camel(strings.ToLower(c.Name), true), c.Value)
	}
	g.p(")")
	g.p("")
	g.p("// Reply codes for connection.close and channel.close. A soft error closes")
	g.p("// the channel, a hard error the connection; see IsHardError.")
	g.p("const (")
	for _, c := range reply {
		comment := ""
		if c.Class != "" {
			comment = " // " + c.Class
		}
		g.p("%s = %d%s", camel(strings.ToLower(c.Name), true), c.Value, comment)
	}
	g.p(")")
	g.p("")
	g.p("// IsHardError reports whether code is a connection-level (hard) error,")
	g.p("// answered with connection.close rather than channel.close.")
	g.p("func IsHardError(code uint16) bool {")
	g.p("switch code {")
	var hard []string
	for _, c := range reply {
		if c.Class == "hard-error" {
			hard = append(hard, camel(strings.ToLower(c.Name), true))
		}
	}
	g.p("case %s:", strings.Join(hard, ", "))
	g.p("return true")
	g.p("}")
	g.p("return false")
	g.p("}")
	g.p("")
}

func (g *generator) classIDs() {
	g.p("// Class ids.")
	g.p("const (")
	for _, c := range g.spec.Classes {
		g.p("Class%s = %d", camel(c.Name, true), c.ID)
	}
	g.p(")")
	g.p("")
}

func methodType(c Class, m Method) string {
	return camel(c.Name, false) + camel(m.Name, false)
}

func (g *generator) method(c Class, m Method) error {
	typ := methodType(c, m)
	full := c.Name + "." + m.Name
	note := ""
	if m.Content {
		note = " It is followed by a content header and body."
	}
	g.p("// %s is %s (class %d, method %d).%s", typ, full, c.ID, m.ID, note)
	g.p("type %s struct {", typ)
	bases := make([]string, len(m.Arguments))
	for i, a := range m.Arguments {
		b, err := g.base(a)
		if err != nil {
			return err
		}
		bases[i] = b
		g.p("%s %s", camel(a.Name, false), baseTypes[b].goName)
	}
	g.p("}")
	g.p("")
	recv := "*" + typ
	g.p("func (%s) ClassID() uint16 { return %d }", recv, c.ID)
	g.p("func (%s) MethodID() uint16 { return %d }", recv, m.ID)
	g.p("func (%s) Name() string { return %q }", recv, full)
	g.p("func (%s) HasContent() bool { return %t }", recv, m.Content)
	g.p("func (%s) Synchronous() bool { return %t }", recv, m.Synchronous)
	g.p("")

	// Runs of consecutive bits share one octet, first bit lowest.
	type run struct {
		bit    bool
		fields []string
		base   string
	}
	var runs []run
	for i, a := range m.Arguments {
		f := "m." + camel(a.Name, false)
		if bases[i] == "bit" && len(runs) > 0 && runs[len(runs)-1].bit && len(runs[len(runs)-1].fields) < 8 {
			runs[len(runs)-1].fields = append(runs[len(runs)-1].fields, f)
			continue
		}
		runs = append(runs, run{bit: bases[i] == "bit", fields: []string{f}, base: bases[i]})
	}

	if len(runs) == 0 {
		g.p("func (%s) Append(dst []byte) []byte { return dst }", recv)
		g.p("func (%s) Decode(*Reader) {}", recv)
		g.p("")
		return nil
	}
	g.p("func (m %s) Append(dst []byte) []byte {", recv)
	for _, r := range runs {
		if r.bit {
			g.p("dst = appendBits(dst, %s)", strings.Join(r.fields, ", "))
		} else {
			g.p(baseTypes[r.base].append, r.fields[0])
		}
	}
	g.p("return dst")
	g.p("}")
	g.p("")
	g.p("func (m %s) Decode(r *Reader) {", recv)
	for _, r := range runs {
		if r.bit {
			ptrs := make([]string, len(r.fields))
			for i, f := range r.fields {
				ptrs[i] = "&" + f
			}
			g.p("r.Bits(%s)", strings.Join(ptrs, ", "))
		} else {
			g.p("%s = r.%s()", r.fields[0], baseTypes[r.base].read)
		}
	}
	g.p("}")
	g.p("")
	return nil
}

func (g *generator) registry() {
	g.p("// methodRegistry maps classID<<16 | methodID to a constructor; it is the")
	g.p("// one table DecodeMethod dispatches on.")
	g.p("var methodRegistry = map[uint32]func() Method{")
	for _, c := range g.spec.Classes {
		for _, m := range c.Methods {
			g.p("%d<<16 | %d: func() Method { return new(%s) },", c.ID, m.ID, methodType(c, m))
		}
	}
	g.p("}")
	g.p("")
}

// properties renders the content-header property list of class c. Only
// basic has properties in 0-9-1, so the struct is simply Properties.
func (g *generator) properties(c Class) error {
	if len(c.Properties) > 14 {
		return fmt.Errorf("%d properties need more than one flag word", len(c.Properties))
	}
	name := "Properties"
	if c.Name != "basic" {
		name = camel(c.Name, true) + "Properties"
	}
	type prop struct {
		field, flag, base string
	}
	props := make([]prop, len(c.Properties))
	for i, a := range c.Properties {
		b, err := g.base(a)
		if err != nil {
			return err
		}
		if b == "bit" {
			return fmt.Errorf("bit properties are not supported")
		}
		f := camel(a.Name, true)
		props[i] = prop{field: f, flag: "Flag" + f, base: b}
	}
	g.p("// Presence flags of %s, in the content header's property flag word. The", name)
	g.p("// first property is the highest bit; bit 0 announces another flag word.")
	g.p("const (")
	for i, p := range props {
		g.p("%s uint16 = 1 << %d", p.flag, 15-i)
	}
	g.p(")")
	g.p("")
	g.p("// %s are the %s class's content properties. Flags records which are", name, c.Name)
	g.p("// present: on encoding a property is written when its flag is set or its")
	g.p("// value is non-zero, so a present-but-empty property survives a round trip;")
	g.p("// on decoding Flags is exactly the flags received.")
	g.p("type %s struct {", name)
	g.p("Flags uint16")
	for _, p := range props {
		g.p("%s %s", p.field, baseTypes[p.base].goName)
	}
	g.p("}")
	g.p("")
	g.p("// knownFlags%s has a bit for every property of %s.", name, name)
	flags := make([]string, len(props))
	for i, p := range props {
		flags[i] = p.flag
	}
	g.p("const knownFlags%s = %s", name, strings.Join(flags, " | "))
	g.p("")
	g.p("// presentFlags returns the flag word to encode: Flags limited to known")
	g.p("// properties, plus a flag for every non-zero property.")
	g.p("func (p *%s) presentFlags() uint16 {", name)
	g.p("f := p.Flags & knownFlags%s", name)
	for _, pr := range props {
		g.p("if "+zeroTest[pr.base]+" {", "p."+pr.field)
		g.p("f |= %s", pr.flag)
		g.p("}")
	}
	g.p("return f")
	g.p("}")
	g.p("")
	g.p("// appendFields appends the properties present in flags, in order.")
	g.p("func (p *%s) appendFields(dst []byte, flags uint16) []byte {", name)
	for _, pr := range props {
		g.p("if flags&%s != 0 {", pr.flag)
		g.p(baseTypes[pr.base].append, "p."+pr.field)
		g.p("}")
	}
	g.p("return dst")
	g.p("}")
	g.p("")
	g.p("// decodeFields reads the properties present in p.Flags.")
	g.p("func (p *%s) decodeFields(r *Reader) {", name)
	for _, pr := range props {
		g.p("if p.Flags&%s != 0 {", pr.flag)
		g.p("p.%s = r.%s()", pr.field, baseTypes[pr.base].read)
		g.p("}")
	}
	g.p("}")
	g.p("")
	return nil
}
