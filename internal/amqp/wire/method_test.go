package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/fieldtable"
)

// fill sets every field of the struct behind m to a non-zero value derived
// from seed and the field's index; bits alternate with seed so that both a
// set and a clear bit are seen in every position.
func fill(m Method, seed int) {
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		k := seed*100 + i + 1
		switch f.Interface().(type) {
		case uint8, uint16, uint32, uint64:
			f.SetUint(uint64(k) * 0x0101)
			if f.Kind() == reflect.Uint64 {
				f.SetUint(uint64(k) << 40)
			}
		case bool:
			f.SetBool((i+seed)%2 == 0)
		case string:
			f.SetString(fmt.Sprintf("%s-%d\x00é", v.Type().Field(i).Name, k))
		case fieldtable.Table:
			f.Set(reflect.ValueOf(fieldtable.Table{"k": int32(k), "nested": fieldtable.Table{"a": []any{"x", int64(k)}}}))
		case time.Time:
			f.Set(reflect.ValueOf(time.Unix(int64(k)*1000, 0).UTC()))
		default:
			panic(fmt.Sprintf("fill: unhandled field type %s", f.Type()))
		}
	}
}

func registeredMethods() []Method {
	keys := make([]uint32, 0, len(methodRegistry))
	for k := range methodRegistry {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ms := make([]Method, len(keys))
	for i, k := range keys {
		ms[i] = methodRegistry[k]()
	}
	return ms
}

func TestMethodRoundTrip(t *testing.T) {
	for _, proto := range registeredMethods() {
		for seed := range 2 {
			m := NewMethod(proto.ClassID(), proto.MethodID())
			fill(m, seed)
			payload := AppendMethod([]byte("junk"), m)[len("junk"):]
			got, err := DecodeMethod(payload)
			if err != nil {
				t.Errorf("%s: %v", m.Name(), err)
				continue
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("%s: round trip\n got  %+v\n want %+v", m.Name(), got, m)
			}
			// Every strict prefix is malformed, never a panic.
			for n := range len(payload) {
				if _, err := DecodeMethod(payload[:n]); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: prefix of %d/%d bytes: %v, want ErrMalformed", m.Name(), n, len(payload), err)
					break
				}
			}
		}
	}
}

func TestGoldenBasicPublish(t *testing.T) {
	m := &BasicPublish{Exchange: "ex", RoutingKey: "rk", Immediate: true}
	got := AppendMethodFrame(nil, 1, m)
	const want = "01" + "0001" + "0000000d" + // method frame, channel 1, 13 bytes
		"003c" + "0028" + // basic.publish
		"0000" + // ticket
		"02" + "6578" + // exchange "ex"
		"02" + "726b" + // routing-key "rk"
		"02" + // mandatory in bit 0 clear, immediate in bit 1 set
		"ce"
	if hex.EncodeToString(got) != want {
		t.Errorf("got  %x\nwant %s", got, want)
	}
	m.Mandatory = true
	if b := m.Append(nil); b[len(b)-1] != 0x03 {
		t.Errorf("mandatory+immediate packed as %#02x, want 0x03", b[len(b)-1])
	}
}

func TestBitPacking(t *testing.T) {
	// queue.declare: ticket, queue, five bits, arguments.
	m := &QueueDeclare{Queue: "q", Durable: true, NoWait: true}
	got := hex.EncodeToString(m.Append(nil))
	const want = "0000" + "0171" + "12" + "00000000" // durable bit 1, nowait bit 4
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// A non-bit argument ends a pack: basic.deliver has one bit between
	// a longlong and a shortstr.
	d := &BasicDeliver{ConsumerTag: "c", DeliveryTag: 1, Redelivered: true, Exchange: "e", RoutingKey: "r"}
	const wantDeliver = "0163" + "0000000000000001" + "01" + "0165" + "0172"
	if got := hex.EncodeToString(d.Append(nil)); got != wantDeliver {
		t.Errorf("basic.deliver got %s, want %s", got, wantDeliver)
	}
}

func TestDecodeMethodErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string // hex
		want     error
		code     uint16
		classID  uint16
		methodID uint16
	}{
		{"empty", "", ErrMalformed, SyntaxError, 0, 0},
		{"short ids", "003c00", ErrMalformed, SyntaxError, 0, 0},
		{"unknown class", "00ff000a", ErrUnknownMethod, NotImplemented, 255, 10},
		{"unknown method", "003c00ff", ErrUnknownMethod, NotImplemented, 60, 255},
		{"truncated", "003c0028" + "0000" + "05" + "6578", ErrMalformed, SyntaxError, 60, 40},
		{"trailing bytes", "003c0028" + "0000" + "00" + "00" + "00" + "ff", ErrMalformed, SyntaxError, 60, 40},
		{"long string beyond payload", "000a000b" + "00000000" + "00" + "ffffffff", ErrMalformed, SyntaxError, 10, 11},
		{"bad table", "000a000b" + "00000003" + "017a", ErrMalformed, SyntaxError, 10, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, _ := hex.DecodeString(tt.in)
			m, err := DecodeMethod(in)
			if m != nil || !errors.Is(err, tt.want) {
				t.Fatalf("DecodeMethod = %v, %v; want %v", m, err, tt.want)
			}
			var me *MethodError
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not a *MethodError", err)
			}
			if me.ReplyCode() != tt.code || me.ClassID != tt.classID || me.MethodID != tt.methodID {
				t.Errorf("MethodError = %d.%d code %d; want %d.%d code %d",
					me.ClassID, me.MethodID, me.ReplyCode(), tt.classID, tt.methodID, tt.code)
			}
		})
	}
}

func TestReplyCodeClasses(t *testing.T) {
	for _, c := range []uint16{ConnectionForced, FrameError, SyntaxError, NotImplemented, InternalError} {
		if !IsHardError(c) {
			t.Errorf("%d should be a hard error", c)
		}
	}
	for _, c := range []uint16{ReplySuccess, NotFound, AccessRefused, PreconditionFailed, ResourceLocked, NoRoute} {
		if IsHardError(c) {
			t.Errorf("%d should not be a hard error", c)
		}
	}
}

func TestShortStrTruncated(t *testing.T) {
	long := string(make([]byte, 300))
	m, err := DecodeMethod(AppendMethod(nil, &ChannelClose{ReplyText: long}))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.(*ChannelClose).ReplyText); got != 255 {
		t.Errorf("reply text of %d bytes, want 255", got)
	}
}

func FuzzDecodeMethod(f *testing.F) {
	for _, m := range registeredMethods() {
		fill(m, 1)
		f.Add(AppendMethod(nil, m))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := DecodeMethod(payload)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownMethod) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		enc := AppendMethod(nil, m)
		m2, err := DecodeMethod(enc)
		if err != nil {
			t.Fatalf("%s: re-encoded method does not decode: %v", m.Name(), err)
		}
		if enc2 := AppendMethod(nil, m2); string(enc) != string(enc2) {
			t.Fatalf("%s: encoding not stable\n %x\n %x", m.Name(), enc, enc2)
		}
		if !equalMethod(m, m2) {
			t.Fatalf("%s: round trip changed the method\n %+v\n %+v", m.Name(), m, m2)
		}
	})
}

// equalMethod compares methods field by field, tables with fieldtable.Equal
// (which, unlike reflect.DeepEqual, treats a NaN as equal to itself).
func equalMethod(a, b Method) bool {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	if va.Type() != vb.Type() {
		return false
	}
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if ta, ok := fa.(fieldtable.Table); ok {
			if !fieldtable.Equal(ta, fb) {
				return false
			}
		} else if fa != fb {
			return false
		}
	}
	return true
}
