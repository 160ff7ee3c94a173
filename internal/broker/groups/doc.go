// Package groups is the coordinator for Kafka's classic consumer group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), with the rebalance
// timeout of KIP-62, the member id round trip of KIP-394, static membership
// of KIP-345 and skip-assignment of KIP-814. It is protocol-neutral: the
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
