package meta

import (
	"encoding/json"
	"fmt"
)

// Command types as stored in the log. A stored name must never change
// meaning; a new kind of change gets a new name.
const (
	CmdCreateTopic        = "create_topic"
	CmdDeleteTopic        = "delete_topic"
	CmdCreatePartitions   = "create_partitions"
	CmdAlterTopicConfigs  = "alter_topic_configs"
	CmdCommitOffsets      = "commit_offsets"
	CmdDeleteGroupOffsets = "delete_group_offsets"
	CmdInitProducerID     = "init_producer_id"

	CmdPutVhost        = "put_vhost"
	CmdDeleteVhost     = "delete_vhost"
	CmdPutUser         = "put_user"
	CmdDeleteUser      = "delete_user"
	CmdSetPermission   = "set_permission"
	CmdClearPermission = "clear_permission"
	CmdDeclareExchange = "declare_exchange"
	CmdDeleteExchange  = "delete_exchange"
	CmdDeclareQueue    = "declare_queue"
	CmdDeleteQueue     = "delete_queue"
	CmdDeleteQueues    = "delete_queues"
	CmdBind            = "bind"
	CmdUnbind          = "unbind"
)

// Command is one change to the metadata state: a Type and the one payload
// field that type uses. Everything Apply needs — ids, timestamps — is in the
// command, so that applying it is deterministic.
type Command struct {
	Type               string                 `json:"type"`
	CreateTopic        *CreateTopicCmd        `json:"create_topic,omitempty"`
	DeleteTopic        *DeleteTopicCmd        `json:"delete_topic,omitempty"`
	CreatePartitions   *CreatePartitionsCmd   `json:"create_partitions,omitempty"`
	AlterTopicConfigs  *AlterTopicConfigsCmd  `json:"alter_topic_configs,omitempty"`
	CommitOffsets      *CommitOffsetsCmd      `json:"commit_offsets,omitempty"`
	DeleteGroupOffsets *DeleteGroupOffsetsCmd `json:"delete_group_offsets,omitempty"`
	InitProducerID     *InitProducerIDCmd     `json:"init_producer_id,omitempty"`

	PutVhost        *PutVhostCmd        `json:"put_vhost,omitempty"`
	DeleteVhost     *DeleteVhostCmd     `json:"delete_vhost,omitempty"`
	PutUser         *PutUserCmd         `json:"put_user,omitempty"`
	DeleteUser      *DeleteUserCmd      `json:"delete_user,omitempty"`
	SetPermission   *SetPermissionCmd   `json:"set_permission,omitempty"`
	ClearPermission *ClearPermissionCmd `json:"clear_permission,omitempty"`
	DeclareExchange *DeclareExchangeCmd `json:"declare_exchange,omitempty"`
	DeleteExchange  *DeleteExchangeCmd  `json:"delete_exchange,omitempty"`
	DeclareQueue    *DeclareQueueCmd    `json:"declare_queue,omitempty"`
	DeleteQueue     *DeleteQueueCmd     `json:"delete_queue,omitempty"`
	DeleteQueues    *DeleteQueuesCmd    `json:"delete_queues,omitempty"`
	Bind            *BindCmd            `json:"bind,omitempty"`
	Unbind          *UnbindCmd          `json:"unbind,omitempty"`
}

// CreateTopicCmd creates a topic with a proposer-generated id and time.
type CreateTopicCmd struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	CreatedMs  int64             `json:"created_ms"`
}

// DeleteTopicCmd deletes a topic and every group's offsets in it.
type DeleteTopicCmd struct {
	Name string `json:"name"`
}

// CreatePartitionsCmd grows a topic to Total partitions.
type CreatePartitionsCmd struct {
	Name  string `json:"name"`
	Total int32  `json:"total"`
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

// op is a command payload: check says whether it can apply to a state
// without changing it; apply changes the state and must only be called
// after check returned nil.
type op interface {
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

// op returns the payload that c.Type selects. This switch is the one list
// of command types.
func (c *Command) op() (op, error) {
	var o op
	switch c.Type {
	case CmdCreateTopic:
		if c.CreateTopic != nil {
			o = c.CreateTopic
		}
	case CmdDeleteTopic:
		if c.DeleteTopic != nil {
			o = c.DeleteTopic
		}
	case CmdCreatePartitions:
		if c.CreatePartitions != nil {
			o = c.CreatePartitions
		}
	case CmdAlterTopicConfigs:
		if c.AlterTopicConfigs != nil {
			o = c.AlterTopicConfigs
		}
	case CmdCommitOffsets:
		if c.CommitOffsets != nil {
			o = c.CommitOffsets
		}
	case CmdDeleteGroupOffsets:
		if c.DeleteGroupOffsets != nil {
			o = c.DeleteGroupOffsets
		}
	case CmdInitProducerID:
		if c.InitProducerID != nil {
			o = c.InitProducerID
		}
	case CmdPutVhost:
		if c.PutVhost != nil {
			o = c.PutVhost
		}
	case CmdDeleteVhost:
		if c.DeleteVhost != nil {
			o = c.DeleteVhost
		}
	case CmdPutUser:
		if c.PutUser != nil {
			o = c.PutUser
		}
	case CmdDeleteUser:
		if c.DeleteUser != nil {
			o = c.DeleteUser
		}
	case CmdSetPermission:
		if c.SetPermission != nil {
			o = c.SetPermission
		}
	case CmdClearPermission:
		if c.ClearPermission != nil {
			o = c.ClearPermission
		}
	case CmdDeclareExchange:
		if c.DeclareExchange != nil {
			o = c.DeclareExchange
		}
	case CmdDeleteExchange:
		if c.DeleteExchange != nil {
			o = c.DeleteExchange
		}
	case CmdDeclareQueue:
		if c.DeclareQueue != nil {
			o = c.DeclareQueue
		}
	case CmdDeleteQueue:
		if c.DeleteQueue != nil {
			o = c.DeleteQueue
		}
	case CmdDeleteQueues:
		if c.DeleteQueues != nil {
			o = c.DeleteQueues
		}
	case CmdBind:
		if c.Bind != nil {
			o = c.Bind
		}
	case CmdUnbind:
		if c.Unbind != nil {
			o = c.Unbind
		}
	default:
		return nil, fmt.Errorf("%w: unknown type %q", ErrInvalidCommand, c.Type)
	}
	if o == nil {
		return nil, fmt.Errorf("%w: %s without its payload", ErrInvalidCommand, c.Type)
	}
	return o, nil
}

// encodeCommand returns the log payload of c.
func encodeCommand(c *Command) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrCommandTooLarge, len(b))
	}
	return b, nil
}

// decodeCommand parses a log payload. It does not check the type; Apply
// does.
func decodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	return c, nil
}
