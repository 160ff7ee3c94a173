package meta

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func putVhostCmd(name string, tags ...string) Command {
	return NewCommand(&PutVhostCmd{Name: name, Tags: tags})
}

func putUserCmd(name string) Command {
	return NewCommand(&PutUserCmd{Name: name, PasswordHash: "h-" + name})
}

func setPermCmd(user, vhost string) Command {
	return NewCommand(&SetPermissionCmd{User: user, Vhost: vhost, Configure: ".*", Write: ".*", Read: ".*"})
}

func exchangeCmd(vhost, name string) Command {
	return NewCommand(&DeclareExchangeCmd{Vhost: vhost, Name: name, Type: "direct", Durable: true})
}

func queueCmd(vhost, name, id string) Command {
	return NewCommand(&DeclareQueueCmd{Vhost: vhost, Name: name, ID: id, Durable: true, CreatedMs: 5})
}

func bnd(vhost, src, kind, dst, key string) Binding {
	return Binding{Vhost: vhost, Source: src, DestinationKind: kind, Destination: dst, RoutingKey: key}
}

func bindCmd(b Binding) Command   { return NewCommand((*BindCmd)(&b)) }
func unbindCmd(b Binding) Command { return NewCommand((*UnbindCmd)(&b)) }

func deleteExchangeCmd(vhost, name string) Command {
	return NewCommand(&DeleteExchangeCmd{Vhost: vhost, Name: name})
}

func deleteQueueCmd(vhost, name string) Command {
	return NewCommand(&DeleteQueueCmd{Vhost: vhost, Name: name})
}

// amqpFixture is a vhost "/" with exchanges x and y, queues q1 and q2,
// and bindings between them.
func amqpFixture() []Command {
	return []Command{
		putVhostCmd("/"),
		exchangeCmd("/", "x"),
		exchangeCmd("/", "y"),
		queueCmd("/", "q1", "01"),
		queueCmd("/", "q2", "02"),
		bindCmd(bnd("/", "x", DestQueue, "q1", "a")),
		bindCmd(bnd("/", "x", DestQueue, "q2", "a")),
		bindCmd(bnd("/", "x", DestExchange, "y", "b")),
		bindCmd(bnd("/", "y", DestQueue, "q1", "c")),
		bindCmd(bnd("/", "y", DestExchange, "x", "d")),
	}
}

// TestApplyAMQP runs scripted command sequences over the AMQP definitions
// and checks each outcome and the final state.
func TestApplyAMQP(t *testing.T) {
	type step struct {
		cmd     Command
		wantErr error
		want    *Result // checked when set
	}
	steps := func(cmds ...Command) []step {
		out := make([]step, len(cmds))
		for i, c := range cmds {
			out[i] = step{cmd: c}
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step
		check func(t *testing.T, st *State)
	}{{
		name: "vhosts",
		steps: []step{
			{cmd: putVhostCmd("/", "a")},
			{cmd: NewCommand(&PutVhostCmd{Name: "/", Description: "root", Tags: []string{}})},
			{cmd: putVhostCmd("b")},
			{cmd: putVhostCmd(""), wantErr: ErrInvalidCommand},
			{cmd: NewCommand(&DeleteVhostCmd{Name: "b"})},
			{cmd: NewCommand(&DeleteVhostCmd{Name: "b"}), wantErr: ErrUnknownVhost},
		},
		check: func(t *testing.T, st *State) {
			if got := st.Vhosts(); !reflect.DeepEqual(got, []Vhost{{Name: "/", Description: "root"}}) {
				t.Fatalf("vhosts = %+v", got)
			}
		},
	}, {
		name: "users and permissions",
		steps: []step{
			{cmd: putUserCmd("u")},
			{cmd: NewCommand(&PutUserCmd{Name: "u", PasswordHash: "new", Tags: []string{"administrator"}})},
			{cmd: putUserCmd(""), wantErr: ErrInvalidCommand},
			{cmd: setPermCmd("u", "/"), wantErr: ErrUnknownVhost},
			{cmd: putVhostCmd("/")},
			{cmd: setPermCmd("nobody", "/"), wantErr: ErrUnknownUser},
			{cmd: setPermCmd("u", "/")},
			{cmd: NewCommand(&SetPermissionCmd{User: "u", Vhost: "/", Read: "^r"})},
			{cmd: putUserCmd("w")},
			{cmd: setPermCmd("w", "/")},
			{cmd: NewCommand(&ClearPermissionCmd{User: "w", Vhost: "/"})},
			{cmd: NewCommand(&ClearPermissionCmd{User: "w", Vhost: "/"})}, // nothing to clear
			{cmd: NewCommand(&ClearPermissionCmd{User: "x", Vhost: "/"}), wantErr: ErrUnknownUser},
			{cmd: NewCommand(&ClearPermissionCmd{User: "w", Vhost: "x"}), wantErr: ErrUnknownVhost},
			{cmd: NewCommand(&DeleteUserCmd{Name: "x"}), wantErr: ErrUnknownUser},
		},
		check: func(t *testing.T, st *State) {
			if got := st.Users(); !reflect.DeepEqual(got, []User{{Name: "u", PasswordHash: "new", Tags: []string{"administrator"}}, {Name: "w", PasswordHash: "h-w"}}) {
				t.Fatalf("users = %+v", got)
			}
			if got := st.Permissions(); !reflect.DeepEqual(got, []Permission{{User: "u", Vhost: "/", Read: "^r"}}) {
				t.Fatalf("permissions = %+v", got)
			}
		},
	}, {
		name: "delete user drops its permissions",
		steps: steps(putVhostCmd("/"), putVhostCmd("v"), putUserCmd("u"), putUserCmd("w"),
			setPermCmd("u", "/"), setPermCmd("u", "v"), setPermCmd("w", "v"),
			NewCommand(&DeleteUserCmd{Name: "u"})),
		check: func(t *testing.T, st *State) {
			if got := st.Permissions(); len(got) != 1 || got[0].User != "w" {
				t.Fatalf("permissions = %+v", got)
			}
		},
	}, {
		name: "exchanges",
		steps: []step{
			{cmd: exchangeCmd("/", "x"), wantErr: ErrUnknownVhost},
			{cmd: putVhostCmd("/")},
			{cmd: exchangeCmd("/", "x")},
			{cmd: exchangeCmd("/", "")}, // the default exchange
			{cmd: exchangeCmd("/", "x"), wantErr: ErrExchangeExists},
			{cmd: NewCommand(&DeclareExchangeCmd{Vhost: "/", Name: "t", Type: "topic", AutoDelete: true, Internal: true, Arguments: []byte{1, 2}})},
			{cmd: deleteExchangeCmd("/", "nope"), wantErr: ErrUnknownExchange},
			{cmd: deleteExchangeCmd("v", "x"), wantErr: ErrUnknownVhost},
			{cmd: deleteExchangeCmd("/", "")},
		},
		check: func(t *testing.T, st *State) {
			want := []Exchange{
				{Vhost: "/", Name: "t", Type: "topic", AutoDelete: true, Internal: true, Arguments: []byte{1, 2}},
				{Vhost: "/", Name: "x", Type: "direct", Durable: true},
			}
			if got := st.Exchanges(""); !reflect.DeepEqual(got, want) {
				t.Fatalf("exchanges = %+v", got)
			}
			if got, ok := st.Exchange("/", "t"); !ok || !reflect.DeepEqual(got, want[0]) {
				t.Fatalf("Exchange = %+v, %v", got, ok)
			}
		},
	}, {
		name: "queues",
		steps: []step{
			{cmd: queueCmd("/", "q", "0a"), wantErr: ErrUnknownVhost},
			{cmd: putVhostCmd("/")},
			{cmd: putVhostCmd("v")},
			{cmd: queueCmd("/", "q", "0a"), want: &Result{Queue: Queue{Vhost: "/", Name: "q", ID: "0a", Durable: true, CreatedMs: 5}}},
			{cmd: queueCmd("/", "q", "0b"), wantErr: ErrQueueExists},
			{cmd: queueCmd("v", "q", "0a"), wantErr: ErrQueueExists}, // id in use
			{cmd: queueCmd("v", "q", "0b")},
			{cmd: queueCmd("/", "", "0c"), wantErr: ErrInvalidCommand},
			{cmd: queueCmd("/", "r", ""), wantErr: ErrInvalidCommand},
			{cmd: queueCmd("/", "r", "../x"), wantErr: ErrInvalidCommand},
			{cmd: queueCmd("/", "r", "0A"), wantErr: ErrInvalidCommand},
			{cmd: queueCmd("/", "r", strings.Repeat("a", 65)), wantErr: ErrInvalidCommand},
			{cmd: deleteQueueCmd("/", "r"), wantErr: ErrUnknownQueue},
			{cmd: deleteQueueCmd("w", "q"), wantErr: ErrUnknownVhost},
			{cmd: deleteQueueCmd("/", "q")},
			{cmd: queueCmd("/", "q2", "0a")}, // a deleted queue's id is free
		},
		check: func(t *testing.T, st *State) {
			got := st.Queues("")
			if len(got) != 2 || got[0].Name != "q2" || got[0].Vhost != "/" || got[1].Vhost != "v" {
				t.Fatalf("queues = %+v", got)
			}
			if got := st.Queues("v"); len(got) != 1 || got[0].ID != "0b" {
				t.Fatalf("queues in v = %+v", got)
			}
		},
	}, {
		name: "bindings",
		steps: append(steps(amqpFixture()...), []step{
			{cmd: bindCmd(bnd("/", "x", DestQueue, "q1", "a"))}, // identical: no-op
			{cmd: bindCmd(bnd("/", "x", DestQueue, "q1", "a2"))},
			{cmd: bindCmd(Binding{Vhost: "/", Source: "x", DestinationKind: DestQueue, Destination: "q1", RoutingKey: "a", Arguments: []byte{9}})},
			{cmd: bindCmd(bnd("/", "nope", DestQueue, "q1", "a")), wantErr: ErrUnknownExchange},
			{cmd: bindCmd(bnd("/", "x", DestQueue, "nope", "a")), wantErr: ErrUnknownQueue},
			{cmd: bindCmd(bnd("/", "x", DestExchange, "nope", "a")), wantErr: ErrUnknownExchange},
			{cmd: bindCmd(bnd("/", "x", DestExchange, "q1", "a")), wantErr: ErrUnknownExchange},
			{cmd: bindCmd(bnd("v", "x", DestQueue, "q1", "a")), wantErr: ErrUnknownVhost},
			{cmd: bindCmd(bnd("/", "x", "stream", "q1", "a")), wantErr: ErrInvalidCommand},
			{cmd: bindCmd(bnd("/", "x", DestTopic, "no-such-topic", "a")), wantErr: ErrUnknownTopic},
			{cmd: unbindCmd(bnd("/", "x", DestQueue, "q1", "a2"))},
			{cmd: unbindCmd(bnd("/", "x", DestQueue, "q1", "never"))}, // missing: no-op
			{cmd: unbindCmd(bnd("/", "x", DestQueue, "nope", "a")), wantErr: ErrUnknownQueue},
			{cmd: unbindCmd(bnd("/", "x", "", "q1", "a")), wantErr: ErrInvalidCommand},
		}...),
		check: func(t *testing.T, st *State) {
			want := []Binding{
				bnd("/", "x", DestExchange, "y", "b"),
				bnd("/", "x", DestQueue, "q1", "a"),
				{Vhost: "/", Source: "x", DestinationKind: DestQueue, Destination: "q1", RoutingKey: "a", Arguments: []byte{9}},
				bnd("/", "x", DestQueue, "q2", "a"),
				bnd("/", "y", DestExchange, "x", "d"),
				bnd("/", "y", DestQueue, "q1", "c"),
			}
			if got := st.Bindings("/"); !reflect.DeepEqual(got, want) {
				t.Fatalf("bindings = %+v\nwant %+v", got, want)
			}
		},
	}, {
		name:  "delete exchange drops bindings from and to it",
		steps: steps(append(amqpFixture(), deleteExchangeCmd("/", "x"))...),
		check: func(t *testing.T, st *State) {
			if got := st.Bindings(""); !reflect.DeepEqual(got, []Binding{bnd("/", "y", DestQueue, "q1", "c")}) {
				t.Fatalf("bindings = %+v", got)
			}
		},
	}, {
		name:  "delete queue drops bindings to it",
		steps: steps(append(amqpFixture(), deleteQueueCmd("/", "q1"))...),
		check: func(t *testing.T, st *State) {
			want := []Binding{bnd("/", "x", DestExchange, "y", "b"), bnd("/", "x", DestQueue, "q2", "a"), bnd("/", "y", DestExchange, "x", "d")}
			if got := st.Bindings(""); !reflect.DeepEqual(got, want) {
				t.Fatalf("bindings = %+v", got)
			}
		},
	}, {
		name: "delete queues",
		steps: steps(append(amqpFixture(), queueCmd("/", "q3", "03"),
			NewCommand(&DeleteQueuesCmd{Vhost: "/", Names: []string{"q1", "gone", "q3", "q1"}}),
			NewCommand(&DeleteQueuesCmd{Vhost: "none", Names: []string{"q2"}}))...),
		check: func(t *testing.T, st *State) {
			if got := st.Queues("/"); len(got) != 1 || got[0].Name != "q2" {
				t.Fatalf("queues = %+v", got)
			}
			if got := st.Bindings("/"); len(got) != 3 {
				t.Fatalf("bindings = %+v", got)
			}
		},
	}, {
		name: "delete vhost cascades",
		steps: steps(append(amqpFixture(), putVhostCmd("v"), putUserCmd("u"), setPermCmd("u", "/"), setPermCmd("u", "v"),
			exchangeCmd("v", "x"), queueCmd("v", "q1", "11"), bindCmd(bnd("v", "x", DestQueue, "q1", "")),
			NewCommand(&DeleteVhostCmd{Name: "/"}),
			queueCmd("v", "q2", "01"), // the deleted vhost's queue ids are free
		)...),
		check: func(t *testing.T, st *State) {
			if got := st.Vhosts(); len(got) != 1 || got[0].Name != "v" {
				t.Fatalf("vhosts = %+v", got)
			}
			if got := st.Permissions(); len(got) != 1 || got[0].Vhost != "v" {
				t.Fatalf("permissions = %+v", got)
			}
			if len(st.Exchanges("")) != 1 || len(st.Queues("")) != 2 || len(st.Bindings("")) != 1 {
				t.Fatalf("left: %+v %+v %+v", st.Exchanges(""), st.Queues(""), st.Bindings(""))
			}
			if got := st.Exchanges("/"); got == nil || len(got) != 0 {
				t.Fatalf("exchanges in a deleted vhost = %#v, want empty", got)
			}
		},
	}, {
		name: "invalid UTF-8",
		steps: []step{
			{cmd: putVhostCmd("/")},
			{cmd: putVhostCmd("a\xff"), wantErr: ErrInvalidCommand},
			{cmd: putVhostCmd("a", "t\xfe"), wantErr: ErrInvalidCommand},
			{cmd: putUserCmd("u\xff"), wantErr: ErrInvalidCommand},
			{cmd: exchangeCmd("/", "x\xff"), wantErr: ErrInvalidCommand},
			{cmd: queueCmd("/", "q\xff", "01"), wantErr: ErrInvalidCommand},
			{cmd: bindCmd(bnd("/", "x", DestQueue, "q", "k\xff")), wantErr: ErrInvalidCommand},
			{cmd: deleteQueueCmd("/", "q\xff"), wantErr: ErrInvalidCommand},
		},
	}, {
		name: "malformed",
		steps: []step{
			{cmd: Command{Type: "bind"}, wantErr: ErrInvalidCommand},
			{cmd: Command{Type: "put_vhost", Payload: &PutUserCmd{Name: "u"}}, wantErr: ErrInvalidCommand},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewState()
			for i, s := range tt.steps {
				before := mustJSON(t, st)
				if err := st.Check(s.cmd); !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Check = %v, want %v", i, err, s.wantErr)
				}
				res, err := st.Apply(s.cmd)
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Apply = %v, want %v", i, err, s.wantErr)
				}
				if err != nil && !bytes.Equal(before, mustJSON(t, st)) {
					t.Fatalf("step %d: refused command changed the state", i)
				}
				if s.want != nil && !reflect.DeepEqual(res, *s.want) {
					t.Fatalf("step %d: result = %+v, want %+v", i, res, s.want)
				}
			}
			if tt.check != nil {
				tt.check(t, st)
			}
			back := NewState()
			if err := back.UnmarshalJSON(mustJSON(t, st)); err != nil {
				t.Fatalf("state does not decode: %v", err)
			}
			if !reflect.DeepEqual(back, st) {
				t.Fatal("state does not round-trip")
			}
		})
	}
}

// TestAMQPCanonicalJSON builds the same definitions in two orders, through
// different histories, and expects equal bytes.
func TestAMQPCanonicalJSON(t *testing.T) {
	a := amqpFixture()
	a = append(a, putVhostCmd("v", "t"), putUserCmd("u"), setPermCmd("u", "v"), setPermCmd("u", "/"))
	b := []Command{
		putUserCmd("u"),
		putVhostCmd("v"),
		putVhostCmd("/"),
		putVhostCmd("v", "t"),
		setPermCmd("u", "v"),
		queueCmd("/", "q2", "02"),
		exchangeCmd("/", "y"),
		exchangeCmd("/", "x"),
		queueCmd("/", "q1", "01"),
		queueCmd("/", "tmp", "03"),
		bindCmd(bnd("/", "y", DestExchange, "x", "d")),
		bindCmd(bnd("/", "x", DestQueue, "q1", "a")),
		bindCmd(bnd("/", "x", DestQueue, "tmp", "a")),
		bindCmd(bnd("/", "y", DestQueue, "q1", "c")),
		bindCmd(bnd("/", "x", DestExchange, "y", "b")),
		bindCmd(Binding{Vhost: "/", Source: "x", DestinationKind: DestQueue, Destination: "q2", RoutingKey: "a", Arguments: []byte{}}),
		deleteQueueCmd("/", "tmp"),
		setPermCmd("u", "/"),
	}
	build := func(cmds []Command) *State {
		st := NewState()
		for i, c := range cmds {
			if _, err := st.Apply(c); err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
		}
		return st
	}
	sa, sb := build(a), build(b)
	ja, jb := mustJSON(t, sa), mustJSON(t, sb)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("equal states encode differently:\n%s\n%s", ja, jb)
	}
	if !reflect.DeepEqual(sa, sb) {
		t.Fatal("equal states differ in memory")
	}
}

// TestOldSnapshotLoads checks that a state encoded before AMQP definitions
// existed still decodes, to no definitions, and encodes to the same bytes.
func TestOldSnapshotLoads(t *testing.T) {
	old := `{"topics":[{"name":"a","id":"40010100-0000-0000-0000-000000000000","partitions":1,"created_ms":1}],"next_producer_id":3,"producers":[{"transactional_id":"tx","producer_id":2,"epoch":0}]}`
	st := NewState()
	must(t, st.UnmarshalJSON([]byte(old)))
	if len(st.Vhosts()) != 0 || len(st.Users()) != 0 || len(st.Queues("")) != 0 {
		t.Fatal("definitions from nowhere")
	}
	if got := string(mustJSON(t, st)); got != old {
		t.Fatalf("re-encoded as\n%s\nwant\n%s", got, old)
	}
	must(t, st.UnmarshalJSON([]byte(`{"next_producer_id":1}`))) // nothing at all
}

func TestStateUnmarshalRejectsAMQP(t *testing.T) {
	const np = `"next_producer_id":1`
	v := `"vhosts":[{"name":"/"}]`
	ex := `"exchanges":[{"vhost":"/","name":"x","type":"direct"}]`
	q := `"queues":[{"vhost":"/","name":"q","id":"01"}]`
	tests := map[string]string{
		"empty vhost":             `{"vhosts":[{"name":""}],` + np + `}`,
		"duplicate vhost":         `{"vhosts":[{"name":"/"},{"name":"/"}],` + np + `}`,
		"duplicate user":          `{"users":[{"name":"u"},{"name":"u"}],` + np + `}`,
		"permission without user": `{` + v + `,"permissions":[{"user":"u","vhost":"/"}],` + np + `}`,
		"duplicate permission":    `{` + v + `,"users":[{"name":"u"}],"permissions":[{"user":"u","vhost":"/"},{"user":"u","vhost":"/"}],` + np + `}`,
		"exchange without vhost":  `{` + ex + `,` + np + `}`,
		"duplicate exchange":      `{` + v + `,"exchanges":[{"vhost":"/","name":"x"},{"vhost":"/","name":"x"}],` + np + `}`,
		"duplicate queue id":      `{` + v + `,"queues":[{"vhost":"/","name":"q","id":"01"},{"vhost":"/","name":"r","id":"01"}],` + np + `}`,
		"bad queue id":            `{` + v + `,"queues":[{"vhost":"/","name":"q","id":"x/y"}],` + np + `}`,
		"dangling binding":        `{` + v + `,` + ex + `,"bindings":[{"vhost":"/","source":"x","destination_kind":"queue","destination":"q"}],` + np + `}`,
		"bad kind":                `{` + v + `,` + ex + `,` + q + `,"bindings":[{"vhost":"/","source":"x","destination_kind":"table","destination":"q"}],` + np + `}`,
		"duplicate binding":       `{` + v + `,` + ex + `,` + q + `,"bindings":[{"vhost":"/","source":"x","destination_kind":"queue","destination":"q"},{"vhost":"/","source":"x","destination_kind":"queue","destination":"q"}],` + np + `}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if err := NewState().UnmarshalJSON([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	ok := `{` + v + `,` + ex + `,` + q + `,"bindings":[{"vhost":"/","source":"x","destination_kind":"queue","destination":"q"}],` + np + `}`
	must(t, NewState().UnmarshalJSON([]byte(ok)))
}

// amqpCommandKinds is how many choices randomAMQPCommand picks from.
const amqpCommandKinds = 20

// randomAMQPCommand returns one AMQP definition command over a few names,
// so that many succeed, some cascade and some are refused. i makes queue
// ids unique, except for a deliberate collision now and then.
func randomAMQPCommand(r *rand.Rand, i int) Command {
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	vhost := pick("/", "/", "/", "v", "w")
	user := pick("u1", "u2")
	exchange := pick("", "e1", "e2")
	queue := pick("q1", "q2", "q3")
	b := Binding{Vhost: vhost, Source: exchange, DestinationKind: DestQueue, Destination: queue, RoutingKey: pick("", "k")}
	if r.IntN(3) == 0 {
		b.DestinationKind, b.Destination = DestExchange, pick("", "e1", "e2")
	}
	if r.IntN(4) == 0 {
		b.Arguments = []byte{byte(r.IntN(2))}
	}
	switch r.IntN(amqpCommandKinds) {
	case 0:
		return NewCommand(&PutVhostCmd{Name: vhost, Description: fmt.Sprint(i), Tags: []string{pick("a", "b")}})
	case 1:
		if r.IntN(3) != 0 { // deleting a vhost undoes much: keep it rare
			return NewCommand(&PutVhostCmd{Name: vhost})
		}
		return NewCommand(&DeleteVhostCmd{Name: vhost})
	case 2:
		return NewCommand(&PutUserCmd{Name: user, PasswordHash: fmt.Sprint(i)})
	case 3:
		return NewCommand(&DeleteUserCmd{Name: user})
	case 4:
		return NewCommand(&SetPermissionCmd{User: user, Vhost: vhost, Configure: fmt.Sprint(i), Read: ".*"})
	case 5:
		return NewCommand(&ClearPermissionCmd{User: user, Vhost: vhost})
	case 6, 7:
		return NewCommand(&DeclareExchangeCmd{Vhost: vhost, Name: exchange, Type: pick("direct", "topic"), Durable: r.IntN(2) == 0})
	case 8:
		return deleteExchangeCmd(vhost, exchange)
	case 9, 10:
		id := fmt.Sprintf("%x", i+1)
		if r.IntN(8) == 0 {
			id = "1"
		}
		return NewCommand(&DeclareQueueCmd{Vhost: vhost, Name: queue, ID: id, AutoDelete: r.IntN(2) == 0, CreatedMs: int64(i)})
	case 11:
		return deleteQueueCmd(vhost, queue)
	case 12:
		return NewCommand(&DeleteQueuesCmd{Vhost: vhost, Names: []string{queue, pick("q1", "q2", "q3")}})
	case 13, 14, 15, 16:
		return bindCmd(b)
	default:
		return unbindCmd(b)
	}
}

// runAMQPScenario defines, changes and deletes AMQP definitions through the
// Store; checkAMQPScenario checks the outcome, before and after reopening.
func runAMQPScenario(t *testing.T, s *Store) {
	must(t, s.PutVhost(Vhost{Name: "/", Tags: []string{"default"}}))
	must(t, s.PutVhost(Vhost{Name: "/", Description: "root", Tags: []string{"default"}}))
	must(t, s.PutVhost(Vhost{Name: "gone"}))
	must(t, s.PutUser(User{Name: "guest", PasswordHash: "old"}))
	must(t, s.PutUser(User{Name: "guest", PasswordHash: "h", Tags: []string{"administrator"}}))
	must(t, s.PutUser(User{Name: "temp"}))
	must(t, s.SetPermission(Permission{User: "guest", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}))
	must(t, s.SetPermission(Permission{User: "guest", Vhost: "gone", Read: ".*"}))
	must(t, s.SetPermission(Permission{User: "temp", Vhost: "/", Read: ".*"}))
	if err := s.SetPermission(Permission{User: "nobody", Vhost: "/"}); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("SetPermission(nobody): %v", err)
	}
	must(t, s.DeclareExchange(Exchange{Vhost: "/", Name: "x", Type: "topic", Durable: true, Arguments: []byte{1, 2, 3}}))
	must(t, s.DeclareExchange(Exchange{Vhost: "/", Name: "y", Type: "fanout"}))
	must(t, s.DeclareExchange(Exchange{Vhost: "gone", Name: "x", Type: "direct"}))
	if err := s.DeclareExchange(Exchange{Vhost: "/", Name: "x", Type: "direct"}); !errors.Is(err, ErrExchangeExists) {
		t.Fatalf("redeclare exchange: %v", err)
	}
	q1, err := s.DeclareQueue(Queue{Vhost: "/", Name: "q1", Durable: true})
	must(t, err)
	if !validQueueID(q1.ID) || q1.CreatedMs != testNow.UnixMilli() || !q1.Durable {
		t.Fatalf("declared %+v", q1)
	}
	if _, err := s.DeclareQueue(Queue{Vhost: "/", Name: "q1"}); !errors.Is(err, ErrQueueExists) {
		t.Fatalf("redeclare queue: %v", err)
	}
	tmp, err := s.DeclareQueue(Queue{Vhost: "/", Name: "tmp", ID: "abcd", Exclusive: true, CreatedMs: 7})
	must(t, err)
	if tmp.ID != "abcd" || tmp.CreatedMs != 7 {
		t.Fatalf("declared %+v", tmp)
	}
	_, err = s.DeclareQueue(Queue{Vhost: "gone", Name: "q"})
	must(t, err)
	must(t, s.Bind(bnd("/", "x", DestQueue, "q1", "a.#")))
	must(t, s.Bind(bnd("/", "x", DestQueue, "tmp", "a.#")))
	must(t, s.Bind(bnd("/", "x", DestExchange, "y", "")))
	must(t, s.Bind(bnd("/", "y", DestQueue, "q1", "")))
	must(t, s.Bind(bnd("/", "y", DestQueue, "q1", "gone")))
	must(t, s.Bind(bnd("gone", "x", DestQueue, "q", "")))
	must(t, s.Unbind(bnd("/", "y", DestQueue, "q1", "gone")))
	if err := s.Bind(bnd("/", "x", DestQueue, "nope", "")); !errors.Is(err, ErrUnknownQueue) {
		t.Fatalf("Bind to a missing queue: %v", err)
	}
	must(t, s.DeleteQueue("/", "tmp")) // takes its binding
	q1b, err := s.DeclareQueue(Queue{Vhost: "/", Name: "tmp"})
	must(t, err)
	if q1b.ID == tmp.ID {
		t.Fatal("re-declared queue kept its id")
	}
	must(t, s.DeleteQueues("/", []string{"tmp", "never"}))
	must(t, s.DeleteUser("temp"))
	must(t, s.DeleteVhost("gone"))
	if err := s.DeleteVhost("gone"); !errors.Is(err, ErrUnknownVhost) {
		t.Fatalf("DeleteVhost twice: %v", err)
	}
}

func checkAMQPScenario(t *testing.T, s *Store) {
	if got := s.Vhosts(); !reflect.DeepEqual(got, []Vhost{{Name: "/", Description: "root", Tags: []string{"default"}}}) {
		t.Fatalf("vhosts = %+v", got)
	}
	if got, ok := s.User("guest"); !ok || !reflect.DeepEqual(got, User{Name: "guest", PasswordHash: "h", Tags: []string{"administrator"}}) {
		t.Fatalf("guest = %+v, %v", got, ok)
	}
	if got := s.Users(); len(got) != 1 {
		t.Fatalf("users = %+v", got)
	}
	want := Permission{User: "guest", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}
	if got := s.Permissions(); !reflect.DeepEqual(got, []Permission{want}) {
		t.Fatalf("permissions = %+v", got)
	}
	if got, ok := s.Permission("guest", "/"); !ok || got != want {
		t.Fatalf("Permission = %+v, %v", got, ok)
	}
	exchanges := s.Exchanges("")
	if len(exchanges) != 2 || !reflect.DeepEqual(exchanges[0], Exchange{Vhost: "/", Name: "x", Type: "topic", Durable: true, Arguments: []byte{1, 2, 3}}) {
		t.Fatalf("exchanges = %+v", exchanges)
	}
	queues := s.Queues("")
	if len(queues) != 1 || queues[0].Name != "q1" {
		t.Fatalf("queues = %+v", queues)
	}
	if q, ok := s.Queue("/", "q1"); !ok || !reflect.DeepEqual(q, queues[0]) {
		t.Fatalf("Queue = %+v, %v", q, ok)
	}
	wantB := []Binding{bnd("/", "x", DestExchange, "y", ""), bnd("/", "x", DestQueue, "q1", "a.#"), bnd("/", "y", DestQueue, "q1", "")}
	if got := s.Bindings("/"); !reflect.DeepEqual(got, wantB) {
		t.Fatalf("bindings = %+v", got)
	}
}

// TestAMQPNoopsAreNotLogged checks that changes that change nothing are
// answered without a log write, and refusals still refuse.
func TestAMQPNoopsAreNotLogged(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions(0))
	must(t, s.PutVhost(Vhost{Name: "/"}))
	must(t, s.PutUser(User{Name: "u"}))
	must(t, s.DeclareExchange(Exchange{Vhost: "/", Name: "x", Type: "direct"}))
	_, err := s.DeclareQueue(Queue{Vhost: "/", Name: "q"})
	must(t, err)
	b := bnd("/", "x", DestQueue, "q", "k")
	must(t, s.Bind(b))
	before := s.Stats()
	must(t, s.Bind(b))
	must(t, s.Bind(Binding{Vhost: "/", Source: "x", DestinationKind: DestQueue, Destination: "q", RoutingKey: "k", Arguments: []byte{}}))
	must(t, s.Unbind(bnd("/", "x", DestQueue, "q", "other")))
	must(t, s.ClearPermission("u", "/"))
	must(t, s.DeleteQueues("/", []string{"a", "b"}))
	must(t, s.DeleteQueues("none", []string{"q"}))
	for _, err := range []error{
		s.Unbind(bnd("/", "x", DestQueue, "missing", "k")),
		s.Bind(bnd("/", "missing", DestQueue, "q", "k")),
		s.ClearPermission("nobody", "/"),
		s.DeleteQueues("/", []string{"q\xff"}),
		s.PutVhost(Vhost{Name: "bad\xff"}),
		s.DeleteExchange("/", "missing"),
		s.DeleteQueue("/", "missing"),
	} {
		if err == nil {
			t.Fatal("refusable command accepted")
		}
	}
	if after := s.Stats(); after.Commands != before.Commands || after.Index != before.Index {
		t.Fatalf("no-op or refused commands were logged: %+v -> %+v", before, after)
	}
	must(t, s.Unbind(b))
	if len(s.Bindings("")) != 0 {
		t.Fatal("Unbind kept the binding")
	}
}

// TestDeleteQueuesChunks deletes more queues than fit one command.
func TestDeleteQueuesChunks(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions(0))
	must(t, s.PutVhost(Vhost{Name: "/"}))
	names := make([]string, deleteQueuesChunk+10)
	var wg sync.WaitGroup
	for i := range names {
		names[i] = fmt.Sprint("q", i)
		wg.Go(func() { // concurrently, to share fsyncs
			if _, err := s.DeclareQueue(Queue{Vhost: "/", Name: names[i]}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	before := s.Stats().Commands
	must(t, s.DeleteQueues("/", append(names, "x")))
	if got := s.Stats().Commands - before; got != 2 {
		t.Fatalf("%d commands, want 2", got)
	}
	if len(s.Queues("/")) != 0 {
		t.Fatal("queues left")
	}
}

func TestAMQPReadsReturnCopies(t *testing.T) {
	s := openStore(t, t.TempDir(), testOptions(0))
	tags := []string{"a"}
	must(t, s.PutVhost(Vhost{Name: "/", Tags: tags}))
	tags[0] = "changed"
	must(t, s.PutUser(User{Name: "u", Tags: []string{"t"}}))
	args := []byte{1}
	must(t, s.DeclareExchange(Exchange{Vhost: "/", Name: "x", Arguments: args}))
	args[0] = 9
	q, err := s.DeclareQueue(Queue{Vhost: "/", Name: "q", Arguments: []byte{2}})
	must(t, err)
	q.Arguments[0] = 9
	must(t, s.Bind(Binding{Vhost: "/", Source: "x", DestinationKind: DestQueue, Destination: "q", Arguments: []byte{3}}))

	v, _ := s.Vhost("/")
	v.Tags[0] = "x"
	s.Vhosts()[0].Tags[0] = "x"
	u, _ := s.User("u")
	u.Tags[0] = "x"
	s.Users()[0].Tags[0] = "x"
	e, _ := s.Exchange("/", "x")
	e.Arguments[0] = 9
	s.Exchanges("/")[0].Arguments[0] = 9
	got, _ := s.Queue("/", "q")
	got.Arguments[0] = 9
	s.Queues("/")[0].Arguments[0] = 9
	s.Bindings("/")[0].Arguments[0] = 9

	if v, _ := s.Vhost("/"); v.Tags[0] != "a" {
		t.Fatalf("vhost changed through a copy: %+v", v)
	}
	if u, _ := s.User("u"); u.Tags[0] != "t" {
		t.Fatalf("user changed through a copy: %+v", u)
	}
	if e, _ := s.Exchange("/", "x"); e.Arguments[0] != 1 {
		t.Fatalf("exchange changed through a copy: %+v", e)
	}
	if q, _ := s.Queue("/", "q"); q.Arguments[0] != 2 {
		t.Fatalf("queue changed through a copy: %+v", q)
	}
	if b := s.Bindings("/")[0]; b.Arguments[0] != 3 {
		t.Fatalf("binding changed through a copy: %+v", b)
	}
}
