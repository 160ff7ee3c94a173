// Package groups is the coordinator for Kafka's consumer groups: the classic
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), with the rebalance
// timeout of KIP-62, the member id round trip of KIP-394, static membership
// of KIP-345 and skip-assignment of KIP-814, and beside it the consumer group
// protocol of KIP-848 (ConsumerGroupHeartbeat, consumer.go, with the
// server-side assignors of assign.go). It is protocol-neutral: the
// Kafka front end decodes a request, calls one method here and encodes the
// result, mapping the errors in errors.go to Kafka error codes. It knows
// nothing of offsets: the front end stores those, asking ValidateCommit
// first.
//
// # Use
//
//	c := groups.New(groups.Options{})
//	defer c.Close()
//	jr := c.Join(ctx, groups.JoinRequest{...})          // blocks for the join phase
//	sr := c.Sync(ctx, groups.SyncRequest{...})          // followers block for the leader
//	err := c.Heartbeat(group, memberID, instanceID, jr.Generation)
//
// Join and Sync block; the front end calls them from the connection's
// request goroutine and passes a context that is cancelled when the
// connection closes, which abandons the wait.
//
// # State machine (per group)
//
//	Empty ──join──▶ PreparingRebalance ──join phase ends──▶ CompletingRebalance ──leader's Sync──▶ Stable
//	  ▲                 │       ▲                                   │                              │
//	  └─no members left─┘       └───── a member joins, leaves, expires, changes protocols, ────────┘
//	                                   misses Sync, or the leader rejoins
//	Empty ──Delete──▶ Dead (removed from the coordinator)
//
// The states:
//
//   - Empty: no members (pending member ids may exist). Listed until Delete.
//   - PreparingRebalance: waiting for every member to (re)join, up to the
//     largest rebalance timeout of the members. Heartbeat returns
//     ErrRebalanceInProgress so members rejoin. Entered from Empty, the
//     phase first waits Options.InitialRebalanceDelay, extended while new
//     members arrive. When it ends, dynamic members that did not rejoin are
//     removed, the generation increments, a protocol every member supports
//     is chosen by the members' preference vote, and every waiting Join is
//     answered; the leader (the previous leader if it rejoined, else the
//     earliest member to have joined) gets every member's metadata.
//   - CompletingRebalance: waiting for the leader's Sync. Followers' Syncs
//     wait. Members that have not sent Sync within the rebalance timeout are
//     removed and the group rebalances.
//   - Stable: Sync returns the member's assignment; Heartbeat succeeds.
//
// Sessions: a member that sends no Join, Sync, Heartbeat or member commit
// within its session timeout is removed and the group rebalances. A member
// blocked in Join or Sync does not expire (its connection is alive; when it
// is not, ctx ends the wait). Deadlines are checked by Tick against
// Options.Now, never by timers, so tests drive time by hand (ManualTick).
//
// Static members (InstanceID): a Join with a known instance id and no member
// id replaces the old incarnation under a new member id and fences the old
// one (ErrFencedInstanceID). In a Stable group whose selected protocol does
// not change this happens without a rebalance; the member keeps its
// assignment. Static members that miss a rejoin are not removed at the end
// of the join phase, only when their session expires.
//
// # The consumer group protocol (KIP-848)
//
// One registry holds both kinds: a group id is a classic group or, while its
// group struct holds a consumerGroup, a consumer group. A consumer heartbeat
// to a classic group with members is refused (ErrGroupNotFound), a classic
// Join to a consumer group with members too (ErrInconsistentProtocol); an
// empty group of either kind converts to the other.
//
// ConsumerHeartbeat never blocks. The group epoch moves (once per heartbeat)
// when a member joins, leaves or expires, changes its subscription or
// assignor, or when a subscribed topic is created, deleted or grows (each
// heartbeat carries the topics that exist). When it moves the target
// assignment is recomputed at once by the assignor most members ask for
// (uniform by default: balanced and sticky; or range). Each member then
// moves toward its target one heartbeat at a time:
//
//	Stable ──target epoch moved, partitions to give up──▶ UnrevokedPartitions
//	   ▲    (member epoch kept; answer lists only what it keeps)      │
//	   │                                   heartbeat no longer owns them
//	   │                                                               ▼
//	   └─────all target partitions free◀── next assignment: member epoch := target epoch,
//	                                        free target partitions added; those another
//	                                        member still owns wait (UnreleasedPartitions)
//
// so a partition is never given to a new owner before its previous owner's
// heartbeat has acknowledged giving it up (owners indexes who holds each
// partition: assigned or pending revocation). A heartbeat with an epoch
// ahead of the member's, or behind it other than the previous epoch with
// no partitions beyond its assignment, is ErrFencedMemberEpoch. Members
// expire after Options.ConsumerSessionTimeout without a heartbeat, and a
// member that does not revoke within its rebalance timeout is removed. A
// static member leaving with epoch -2 stays (away) with its assignment until
// its session expires or its instance id rejoins and takes its place.
// Membership lives in memory only: after a restart members are unknown
// (ErrUnknownMemberID) and rejoin; committed offsets are the front end's.
//
// # Concurrency and lock order
//
// Coordinator.mu guards the map of groups (and the closed flag); each
// group's own mu guards everything in the group and its members. The order
// is Coordinator.mu, then group.mu; no one takes Coordinator.mu while
// holding a group.mu, and no two group locks are held at once. Functions
// named ...Locked need the group's mu. Waiting Join and Sync calls wait on a
// one-slot channel that the group fills, exactly once, under its lock
// (answering, superseding, fencing or removing the member); they never hold
// a lock while waiting. There is no goroutine per member or per group: one
// background goroutine calls Tick (none with ManualTick).
package groups
