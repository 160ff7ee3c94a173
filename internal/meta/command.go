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

// Result is what applying a command produced, for the proposer.
type Result struct {
	Topic         Topic // CreateTopic: the created topic
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
