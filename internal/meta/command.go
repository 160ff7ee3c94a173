package meta

import (
	"encoding/json"
	"fmt"
)

// Command is one change to the metadata state: the name of its kind and
// its payload. Everything Apply needs — ids, timestamps — is in the
// command, so that applying it is deterministic. Build one with
// NewCommand, which takes the name from the registry (commands.go).
type Command struct {
	Type    string
	Payload Payload
}

// NewCommand returns the command carrying p, named as p's kind is
// registered. It panics on a payload type that is not registered, which is
// a programming error.
func NewCommand(p Payload) Command {
	k, ok := kindOf(p)
	if !ok {
		panic(fmt.Sprintf("meta: payload type %T is not a registered command", p))
	}
	return Command{Type: k.name, Payload: p}
}

// CreateTopicCmd creates a topic with a proposer-generated id and time.
type CreateTopicCmd struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	CreatedMs  int64             `json:"created_ms"`
	// Replicas, in a cluster, places each partition (placement.go).
	Replicas [][]int32 `json:"replicas,omitempty"`
}

// DeleteTopicCmd deletes a topic and every group's offsets in it.
type DeleteTopicCmd struct {
	Name string `json:"name"`
}

// CreatePartitionsCmd grows a topic to Total partitions.
type CreatePartitionsCmd struct {
	Name  string `json:"name"`
	Total int32  `json:"total"`
	// Replicas places the new partitions, when the topic's are placed.
	Replicas [][]int32 `json:"replicas,omitempty"`
}

// AlterTopicConfigsCmd sets then removes configs; with Replace the configs
// become exactly Set (Remove is ignored).
type AlterTopicConfigsCmd struct {
	Name    string            `json:"name"`
	Set     map[string]string `json:"set,omitempty"`
	Remove  []string          `json:"remove,omitempty"`
	Replace bool              `json:"replace,omitempty"`
}

// CommitOffsetsCmd commits offsets for one group, all or none: if any entry
// names an unknown topic or partition, nothing is committed.
type CommitOffsetsCmd struct {
	Group   string         `json:"group"`
	Commits []OffsetCommit `json:"commits"`
}

// DeleteGroupOffsetsCmd deletes a group's offsets in Partitions, or all of
// them with All.
type DeleteGroupOffsetsCmd struct {
	Group      string           `json:"group"`
	Partitions []TopicPartition `json:"partitions,omitempty"`
	All        bool             `json:"all,omitempty"`
}

// InitProducerIDCmd allocates a producer id, or bumps the epoch of a
// transactional id's producer.
type InitProducerIDCmd struct {
	TransactionalID string `json:"transactional_id,omitempty"`
}

// PutVhostCmd creates a vhost or replaces an existing one's description
// and tags.
type PutVhostCmd Vhost

// DeleteVhostCmd deletes a vhost with its exchanges, queues, bindings and
// permissions.
type DeleteVhostCmd struct {
	Name string `json:"name"`
}

// PutUserCmd creates a user or replaces an existing one's hash and tags.
type PutUserCmd User

// DeleteUserCmd deletes a user and its permissions.
type DeleteUserCmd struct {
	Name string `json:"name"`
}

// SetPermissionCmd sets (replaces) a user's permission in a vhost.
type SetPermissionCmd Permission

// ClearPermissionCmd removes a user's permission in a vhost, if any.
type ClearPermissionCmd struct {
	User  string `json:"user"`
	Vhost string `json:"vhost"`
}

// DeclareExchangeCmd creates an exchange.
type DeclareExchangeCmd Exchange

// DeleteExchangeCmd deletes an exchange and every binding from or to it.
type DeleteExchangeCmd struct {
	Vhost string `json:"vhost"`
	Name  string `json:"name"`
}

// DeclareQueueCmd creates a queue with a proposer-generated id and time.
type DeclareQueueCmd Queue

// DeleteQueueCmd deletes a queue and every binding to it.
type DeleteQueueCmd struct {
	Vhost string `json:"vhost"`
	Name  string `json:"name"`
}

// DeleteQueuesCmd deletes the named queues of a vhost that exist, with
// their bindings, skipping the others.
type DeleteQueuesCmd struct {
	Vhost string   `json:"vhost"`
	Names []string `json:"names"`
}

// BindCmd adds a binding; an identical binding already present is kept.
type BindCmd Binding

// UnbindCmd removes a binding, if present.
type UnbindCmd Binding

// Result is what applying a command produced, for the proposer.
type Result struct {
	Topic         Topic // CreateTopic: the created topic
	Queue         Queue // DeclareQueue: the created queue
	ProducerID    int64 // InitProducerID
	ProducerEpoch int16 // InitProducerID
}

// Payload is a command's payload: check says whether it can apply to a
// state without changing it; apply changes the state and must only be
// called after check returned nil. Every payload type is registered once,
// in commands.go.
type Payload interface {
	check(st *State) error
	apply(st *State) Result
}

// validator is implemented by payloads that can be malformed in ways their
// log encoding would hide (JSON turns invalid UTF-8 into U+FFFD). propose
// calls it on the command as given, before encoding; check calls it too.
type validator interface {
	validate() error
}

// validate reports whether c is malformed, looking at nothing but c.
func (c *Command) validate() error {
	o, err := c.op()
	if err != nil {
		return err
	}
	if v, ok := o.(validator); ok {
		return v.validate()
	}
	return nil
}

// op returns c's payload once it is known to be what c.Type names.
func (c *Command) op() (Payload, error) {
	k, ok := kindNamed(c.Type)
	if !ok {
		return nil, fmt.Errorf("%w: unknown type %q", ErrInvalidCommand, c.Type)
	}
	if isNil(c.Payload) {
		return nil, fmt.Errorf("%w: %s without its payload", ErrInvalidCommand, c.Type)
	}
	if pk, _ := kindOf(c.Payload); pk != k {
		return nil, fmt.Errorf("%w: %s with a %T payload", ErrInvalidCommand, c.Type, c.Payload)
	}
	return c.Payload, nil
}

// encodeCommand returns the log payload of c: a JSON object with "type"
// and one field, named after the type, holding the payload. The bytes are
// those the earlier struct encoding produced (docs/meta-format.md).
func encodeCommand(c *Command) ([]byte, error) {
	if _, err := c.op(); err != nil {
		return nil, err
	}
	name, err := json.Marshal(c.Type)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(c.Payload)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(`{"type":,"":}`)+2*len(name)+len(payload))
	b = append(b, `{"type":`...)
	b = append(b, name...)
	b = append(b, ',')
	b = append(b, name...)
	b = append(b, ':')
	b = append(b, payload...)
	b = append(b, '}')
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrCommandTooLarge, len(b))
	}
	return b, nil
}

// decodeCommand parses a log payload. An unknown type or a missing
// payload decodes to a Command that Apply refuses as invalid; a payload
// that does not parse is invalid at once.
func decodeCommand(b []byte) (Command, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	var c Command
	if raw, ok := fields["type"]; ok {
		if err := json.Unmarshal(raw, &c.Type); err != nil {
			return Command{}, fmt.Errorf("%w: type: %v", ErrInvalidCommand, err)
		}
	}
	k, ok := kindNamed(c.Type)
	if !ok {
		return c, nil
	}
	raw, ok := fields[k.name]
	if !ok || string(raw) == "null" {
		return c, nil
	}
	p := k.newPayload()
	if err := json.Unmarshal(raw, p); err != nil {
		return Command{}, fmt.Errorf("%w: %s: %v", ErrInvalidCommand, k.name, err)
	}
	c.Payload = p
	return c, nil
}
