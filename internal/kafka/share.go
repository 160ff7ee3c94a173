package kafka

// Helpers of the share group handlers (KIP-932, 76_ to 79_ and 90_ to
// 92_): the share core's errors as Kafka codes.

import (
	"errors"
	"slices"
	"strconv"

	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var shareCodes = []struct {
	err  error
	code *kerr.Error
}{
	{share.ErrInvalidRecordState, kerr.InvalidRecordState},
	{share.ErrInvalidAckType, kerr.InvalidRequest},
	{share.ErrUnknownMember, kerr.UnknownMemberID},
	{share.ErrFencedEpoch, kerr.FencedMemberEpoch},
	{share.ErrSessionNotFound, kerr.ShareSessionNotFound},
	{share.ErrSessionEpoch, kerr.InvalidShareSessionEpoch},
	{share.ErrGroupNotFound, kerr.GroupIDNotFound},
	{share.ErrNonEmptyGroup, kerr.NonEmptyGroup},
	{share.ErrInvalidConfig, kerr.InvalidConfig},
	{share.ErrInvalidRequest, kerr.InvalidRequest},
}

// shareCodeAndMessage is codeAndMessage knowing the share core's errors.
func shareCodeAndMessage(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	for _, m := range shareCodes {
		if errors.Is(err, m.err) {
			msg := err.Error()
			return m.code.Code, &msg
		}
	}
	return codeAndMessage(err)
}

// shareGroupConfigs alters a share group's configs (IncrementalAlterConfigs
// on a GROUP resource): share.auto.offset.reset, share.record.lock.duration.ms,
// share.delivery.count.limit, share.partition.max.record.locks,
// share.heartbeat.interval.ms and share.session.timeout.ms. Another name,
// or a value out of Kafka's range, is INVALID_CONFIG. A live classic or
// consumer group of that id is INVALID_REQUEST: Sluice keeps no configs
// for those.
func (c *conn) shareGroupConfigs(group string, set map[string]string, remove []string, validateOnly bool) error {
	if group == "" {
		return reqErr(kerr.InvalidGroupID, "empty group id")
	}
	if _, ok := c.s.groups.Describe(group); ok {
		return reqErr(kerr.InvalidRequest, "group %s is not a share group", group)
	}
	err := c.s.broker.Shares().AlterConfigs(group, set, remove, validateOnly)
	if errors.Is(err, share.ErrInvalidConfig) {
		return reqErr(kerr.InvalidConfig, "%s", err.Error())
	}
	return err
}

// shareGroupType is a share group's group type and protocol type in
// ListGroups, as Kafka reports them.
const shareGroupType = "share"

// openedShareSession notes a share session opened on this connection.
func (c *conn) openedShareSession(group, member string) {
	if c.shareSessions == nil {
		c.shareSessions = map[[2]string]bool{}
	}
	c.shareSessions[[2]string{group, member}] = true
}

// closeShareSessions ends the share sessions opened on this connection,
// once it is closed.
func (c *conn) closeShareSessions() {
	for k := range c.shareSessions {
		c.s.broker.Shares().ConnClosed(k[0], k[1], c)
	}
}

// describeShareGroupConfigs answers DescribeConfigs for a GROUP resource:
// every share group config, as set on the group (GROUP_CONFIG) or its
// default (DEFAULT_CONFIG), also for a group that does not exist yet, as
// Kafka does.
func (c *conn) describeShareGroupConfigs(sr *kmsg.DescribeConfigsResponseResource, names []string) {
	if sr.ResourceName == "" {
		sr.ErrorCode, sr.ErrorMessage = kerr.InvalidGroupID.Code, kmsg.StringPtr("empty group id")
		return
	}
	set := c.s.broker.Shares().Configs(sr.ResourceName)
	defaults := share.DefaultConfig()
	def := map[string]string{
		share.ConfigAutoOffsetReset:   "latest",
		share.ConfigLockDuration:      strconv.FormatInt(defaults.LockDuration.Milliseconds(), 10),
		share.ConfigDeliveryLimit:     strconv.Itoa(defaults.DeliveryLimit),
		share.ConfigMaxRecordLocks:    strconv.Itoa(defaults.MaxRecordLocks),
		share.ConfigHeartbeatInterval: strconv.FormatInt(defaults.HeartbeatInterval.Milliseconds(), 10),
		share.ConfigSessionTimeout:    strconv.FormatInt(defaults.SessionTimeout.Milliseconds(), 10),
	}
	for _, name := range share.ConfigNames() {
		if names != nil && !slices.Contains(names, name) {
			continue
		}
		sc := kmsg.NewDescribeConfigsResponseResourceConfig()
		sc.Name, sc.Value, sc.Source, sc.IsDefault = name, kmsg.StringPtr(def[name]), kmsg.ConfigSourceDefaultConfig, true
		if v, ok := set[name]; ok {
			sc.Value, sc.Source, sc.IsDefault = kmsg.StringPtr(v), kmsg.ConfigSourceGroupConfig, false
		}
		sc.ConfigType = kmsg.ConfigTypeInt
		if name == share.ConfigAutoOffsetReset {
			sc.ConfigType = kmsg.ConfigTypeString
		}
		sr.Configs = append(sr.Configs, sc)
	}
}
