package broker

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/share"
)

// A group's state file reads back as written; a torn or altered one is
// refused, not half read.
func TestShareStateFileRoundTrip(t *testing.T) {
	g := share.NewGroup("orders")
	g.Configs[share.ConfigLockDuration] = "1500"
	tp := share.TP{Topic: share.TopicID{7}, Partition: 2}
	p := g.Partition(tp)
	p.Init(40)
	p.AcquireNew("m", time.Unix(1000, 0), 40, 44)
	p.Ack("m", 40, 41, []int8{share.AckAccept}, time.Unix(1000, 0), 5)
	body, _ := json.Marshal(shareStateFile{Name: g.Name, Configs: g.Configs, Partitions: []sharePartitionFile{{Topic: "07000000000000000000000000000000", Partition: 2, PartitionState: p.State()}}})
	path := filepath.Join(t.TempDir(), "x.state")
	if err := writeFileDurably(path, encodeShareState(body)); err != nil {
		t.Fatal(err)
	}
	got, err := readShareState(path)
	if err != nil {
		t.Fatal(err)
	}
	q := got.Partitions[tp]
	if got.Name != "orders" || got.Configs[share.ConfigLockDuration] != "1500" || q == nil || q.Start != 42 || q.End != 45 || q.Pending() != 3 {
		t.Fatalf("read back %+v %+v", got, q)
	}
	data := encodeShareState(body)
	for _, bad := range [][]byte{data[:len(data)-1], append([]byte("SHG2"), data[4:]...), nil} {
		if _, err := decodeShareState(bad); err == nil {
			t.Fatalf("accepted a damaged state file of %d bytes", len(bad))
		}
	}
}

// FuzzDecodeShareState: state files are read at start; whatever is in
// them must not panic the broker.
func FuzzDecodeShareState(f *testing.F) {
	f.Add(encodeShareState([]byte(`{"name":"g","partitions":[{"topic":"07000000000000000000000000000000","partition":0,"start":5,"end":9,"records":[{"f":6,"l":7,"c":2}]}]}`)))
	f.Add(encodeShareState([]byte(`{"name":"g","partitions":[{"topic":"zz","partition":0,"start":9,"end":5}]}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeShareState(data)
		// Also with a valid checksum, to reach the body.
		if len(data) > 8 {
			decodeShareState(encodeShareState(data[8:]))
		}
	})
}
