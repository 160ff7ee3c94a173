package meta

import (
	"bytes"
	"errors"
	"testing"
)

// validLog returns the records of cmds, as a log body.
func validLog(t testing.TB, cmds []Command) []byte {
	var b []byte
	for _, c := range cmds {
		p, err := encodeCommand(&c)
		if err != nil {
			t.Fatal(err)
		}
		b = appendRecord(b, p)
	}
	return b
}

// FuzzReplay replays arbitrary bytes as a log body. It must not panic; the
// valid prefix it reports must replay again to the same state with nothing
// left over; and replay must be deterministic.
func FuzzReplay(f *testing.F) {
	good := validLog(f, randomCommands(newRand(1), 40))
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(append(bytes.Clone(good), "garbage"...))
	f.Add(validLog(f, []Command{createCmd("a", 1, 2), commitCmd("g", oc("a", 1, 9))}))
	f.Add(appendRecord(nil, []byte(`{"type":"create_topic","create_topic":{"name":"a","id":"40010100-0000-0000-0000-000000000000","partitions":2147483647}}`)))
	f.Add(appendRecord(nil, []byte(`{"type":"nope"}`)))
	f.Add(appendRecord(nil, []byte(`{"type":"unregister_node","unregister_node":{"id":3}}`)))
	f.Add(appendRecord(nil, []byte(`{"type":"register_node","register_node":{"id":3,"rack":"r","cluster_addr":"h:9190","kafka_addr":"h:9092"}}`)))
	f.Add(append(appendRecord(nil, []byte(`{"type":"create_topic","create_topic":{"name":"p","id":"40010100-0000-0000-0000-000000000001","partitions":2,"replicas":[[1],[2,3]]}}`)),
		appendRecord(nil, []byte(`{"type":"create_partitions","create_partitions":{"name":"p","total":3,"replicas":[[3]]}}`))...))
	f.Add([]byte{0x00, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		replay := func(b []byte) (*State, uint64, int64, error, error) {
			st := NewState()
			last, valid, stop, err := replayRecords(st, bytes.NewReader(b), int64(len(b)), 1, 0)
			return st, last, valid, stop, err
		}
		st, last, valid, stop, err := replay(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if valid < 0 || valid > int64(len(data)) || (stop == nil) != (valid == int64(len(data))) {
			t.Fatalf("valid %d of %d, stop %v", valid, len(data), stop)
		}
		st2, last2, valid2, stop2, err2 := replay(data[:valid])
		if err2 != nil || stop2 != nil || valid2 != valid || last2 != last {
			t.Fatalf("prefix replay: last %d valid %d stop %v err %v; first: last %d valid %d", last2, valid2, stop2, err2, last, valid)
		}
		if !bytes.Equal(mustJSON(t, st), mustJSON(t, st2)) {
			t.Fatal("replay is not deterministic")
		}
	})
}

// FuzzApply applies an arbitrary command payload to a populated state. It
// must not panic, a refusal must leave the state unchanged, and the state
// must still round-trip through its snapshot encoding.
func FuzzApply(f *testing.F) {
	for _, c := range randomCommands(newRand(2), 30) {
		p, _ := encodeCommand(&c)
		f.Add(p)
	}
	f.Add([]byte(`{"type":"commit_offsets","commit_offsets":{"group":"g","commits":[{"topic":"a","partition":-1}]}}`))
	f.Add([]byte(`{"type":"create_partitions","create_partitions":{"name":"a","total":-5}}`))
	f.Add([]byte(`{"type":"bind","bind":{"vhost":"/","source":"e1","destination_kind":"queue","destination":"q1","routing_key":"k","arguments":"AQ=="}}`))
	f.Add([]byte(`{"type":"declare_queue","declare_queue":{"vhost":"/","name":"q9","id":"0f"}}`))
	f.Add([]byte(`{"type":"delete_vhost","delete_vhost":{"name":"/"}}`))
	f.Add([]byte(`{"type":"end_transaction","end_transaction":{"transactional_id":"tx1","producer_id":0,"epoch":0,"timeout_ms":1,"state":"prepare_commit","partitions":[{"topic":"a","partition":0}],"prev_producer_id":1,"prev_epoch":0}}`))
	f.Add([]byte(`{"type":"end_transaction","end_transaction":{"transactional_id":"tx1","state":"complete_abort","prev_producer_id":1,"prev_epoch":32766}}`))
	f.Add([]byte(`{"type":"create_topic","create_topic":{"name":"pl","id":"40010100-0000-0000-0000-000000000002","partitions":2,"replicas":[[1],[2]]}}`))
	f.Add([]byte(`{"type":"create_partitions","create_partitions":{"name":"a","total":9,"replicas":[[1]]}}`))
	seed := randomCommands(newRand(3), 50)
	f.Fuzz(func(t *testing.T, payload []byte) {
		st := NewState()
		for _, c := range seed {
			st.Apply(c)
		}
		before := mustJSON(t, st)
		cmd, err := decodeCommand(payload)
		if err != nil {
			return
		}
		if _, err := st.Apply(cmd); err != nil && !bytes.Equal(before, mustJSON(t, st)) {
			t.Fatalf("refused command (%v) changed the state", err)
		}
		after := mustJSON(t, st)
		back := NewState()
		if err := back.UnmarshalJSON(after); err != nil {
			t.Fatalf("state does not decode: %v\n%s", err, after)
		}
		if !bytes.Equal(mustJSON(t, back), after) {
			t.Fatal("state does not round-trip")
		}
	})
}
