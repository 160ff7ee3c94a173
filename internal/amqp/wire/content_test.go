package wire

import (
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/fieldtable"
)

func allProperties() Properties {
	return Properties{
		ContentType:     "text/plain",
		ContentEncoding: "gzip",
		Headers:         fieldtable.Table{"x-match": "all", "n": int32(7)},
		DeliveryMode:    2,
		Priority:        9,
		CorrelationID:   "corr",
		ReplyTo:         "reply",
		Expiration:      "60000",
		MessageID:       "id-1",
		Timestamp:       time.Unix(1700000000, 0).UTC(),
		Type:            "type",
		UserID:          "guest",
		AppID:           "app",
		ClusterID:       "cluster",
	}
}

func TestContentHeaderRoundTrip(t *testing.T) {
	p := allProperties()
	payload := AppendContentHeader(nil, ClassBasic, 12345, &p)
	classID, size, got, err := DecodeContentHeader(payload)
	if err != nil {
		t.Fatal(err)
	}
	if classID != ClassBasic || size != 12345 {
		t.Errorf("class %d size %d", classID, size)
	}
	p.Flags = 0xfffc // every property, derived from the non-zero values
	if !reflect.DeepEqual(got, p) {
		t.Errorf("round trip\n got  %+v\n want %+v", got, p)
	}
}

func TestContentHeaderPresentButEmpty(t *testing.T) {
	p := Properties{Flags: FlagContentType | FlagHeaders | FlagPriority, Type: "t"}
	_, _, got, err := DecodeContentHeader(AppendContentHeader(nil, ClassBasic, 0, &p))
	if err != nil {
		t.Fatal(err)
	}
	want := FlagContentType | FlagHeaders | FlagPriority | FlagType
	if got.Flags != want || got.Type != "t" || got.ContentType != "" || got.Headers == nil || len(got.Headers) != 0 {
		t.Errorf("got %+v, flags %#04x want %#04x", got, got.Flags, want)
	}
}

func TestGoldenContentHeader(t *testing.T) {
	p := Properties{ContentType: "a", DeliveryMode: 2, Timestamp: time.Unix(1, 0)}
	got := AppendHeaderFrame(nil, 3, ClassBasic, 5, &p)
	const want = "02" + "0003" + "00000019" + // header frame, channel 3, 25 bytes
		"003c" + "0000" + "0000000000000005" + // class basic, weight, body size
		"9040" + // content-type (bit 15), delivery-mode (12), timestamp (6)
		"0161" + "02" + "0000000000000001" +
		"ce"
	if hex.EncodeToString(got) != want {
		t.Errorf("got  %x\nwant %s", got, want)
	}
	if got := AppendContentHeader(nil, ClassBasic, 0, nil); hex.EncodeToString(got) != "003c"+"0000"+"0000000000000000"+"0000" {
		t.Errorf("nil properties: %x", got)
	}
}

func TestDecodeContentHeaderErrors(t *testing.T) {
	const head = "003c" + "0000" + "0000000000000005"
	tests := []struct {
		name, in string
	}{
		{"short", "003c0000"},
		{"no flags", head},
		{"unknown property bit", head + "0002"},
		{"continuation word with properties", head + "0001" + "8000"},
		{"missing continuation word", head + "8001" + "0161"},
		{"truncated property", head + "8000" + "05" + "61"},
		{"trailing bytes", head + "0000" + "00"},
		{"bad headers table", head + "2000" + "00000002" + "0161"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, _ := hex.DecodeString(tt.in)
			if _, _, _, err := DecodeContentHeader(in); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeContentHeader(%s) error = %v, want ErrMalformed", tt.in, err)
			}
		})
	}
	// Empty continuation words are skipped.
	in, _ := hex.DecodeString(head + "8001" + "0001" + "0000" + "0161")
	if _, _, p, err := DecodeContentHeader(in); err != nil || p.ContentType != "a" || p.Flags != FlagContentType {
		t.Errorf("continuation words: %+v, %v", p, err)
	}
}

func FuzzDecodeContentHeader(f *testing.F) {
	p := allProperties()
	f.Add(AppendContentHeader(nil, ClassBasic, 7, &p))
	f.Add(AppendContentHeader(nil, ClassBasic, 0, &Properties{Flags: FlagHeaders}))
	f.Fuzz(func(t *testing.T, payload []byte) {
		classID, size, p, err := DecodeContentHeader(payload)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		enc := AppendContentHeader(nil, classID, size, &p)
		c2, s2, p2, err := DecodeContentHeader(enc)
		if err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if c2 != classID || s2 != size || !equalProperties(p, p2) {
			t.Fatalf("round trip changed the header\n %+v\n %+v", p, p2)
		}
		if enc2 := AppendContentHeader(nil, c2, s2, &p2); string(enc) != string(enc2) {
			t.Fatalf("encoding not stable\n %x\n %x", enc, enc2)
		}
	})
}

func equalProperties(a, b Properties) bool {
	if !fieldtable.Equal(a.Headers, b.Headers) {
		return false
	}
	a.Headers, b.Headers = nil, nil
	return reflect.DeepEqual(a, b)
}
