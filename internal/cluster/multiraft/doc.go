// Package multiraft runs many Raft groups on one node: the host of
// go.etcd.io/raft/v3 RawNodes that the metadata group and, later, every
// replicated partition share.
//
// Raft is used as a library. The host owns each group's RawNode and drives
// it: one ticker ticks every group's clock; messages from the transport
// are stepped into their group as they arrive; proposals are handed to the
// group at once. None of that does I/O. A group that has something to do
// (a Ready) is put on the dirty list, and the round loop hands the dirty
// groups to a small pool of workers (GOMAXPROCS, at least 2). For each
// group's Ready a worker, in the order Raft requires:
//
//  1. saves the HardState, entries and snapshot (Storage.Save fsyncs
//     before it returns);
//  2. queues the Ready's messages in the round's outbox, by destination;
//  3. applies a received snapshot, then the committed entries (after
//     giving configuration changes to Raft), to the StateMachine;
//  4. takes a snapshot every SnapshotEvery entries (StateMachine.Snapshot,
//     Storage.Compact);
//  5. calls Advance.
//
// When every group of the round is done the outbox is sent: one
// Transport.Send per destination node for all groups, so a round's
// heartbeats and appends to a node travel as one batch. A destination
// that is not reachable is reported to each group that wrote to it
// (ReportUnreachable, so its leader probes instead of streaming), and
// snapshots sent are reported finished (or failed when the node was
// unreachable); the transport does not acknowledge delivery, so the
// follower's answer corrects Raft.
//
// Because a round waits for its slowest fsync, messages never leave before
// the state they depend on is durable. A busy group costs one Tick per tick
// interval and no goroutine; an idle one is quiesced (quiesce.go): not
// ticked at all, woken by a message, a proposal or a change in a peer
// node's liveness. Stats reports the host's groups and counters for
// metrics.
//
// # Contracts
//
// Every replica's Raft ID is its node's cluster.NodeID. A message from the
// transport is stepped only if it is addressed to this node by the node
// it came from, is not one of Raft's local message types, and (for an
// append) carries contiguous entries: a peer is authenticated, but a bug
// there must not break Raft here.
//
// Storage and StateMachine belong to the caller, who opens them before
// AddGroup and closes them after RemoveGroup (which waits for a Ready
// being handled) or Host.Close. A Storage whose Save fails stops its group
// for good: after a failed fsync nothing later may be acknowledged.
//
// The transport belongs to the caller too: New sets the host as its
// handler, so the caller creates the host, then starts the transport and
// the host; Close the host, then the transport.
//
// # Locks
//
// Lock order: Host.mu (the group map), then group.proc (held by the
// worker for a whole Ready, and taken by RemoveGroup to wait for it), then
// group.mu (the RawNode and the group's state). Host.schedMu (the dirty
// list) and Host.outMu (the round's outbox) are leaves: nothing is taken
// while they are held. Host.quiet.mu (which quiesced groups wake on which
// node's liveness) is taken under group.mu as a group quiesces or wakes;
// the liveness poll holds it only to collect the groups to wake (calling
// Transport.Reachable, which takes no host lock), then takes each
// group.mu without it. No lock is held across Storage.Save or a
// Transport call except group.proc, which only the group's own worker
// and RemoveGroup take.
//
// LocalNetwork is an in-memory cluster.Transport for tests, with cut
// links and message filters; other packages' tests use it too.
package multiraft
