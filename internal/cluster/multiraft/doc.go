// Package multiraft runs many Raft groups on one node: the host of
// go.etcd.io/raft/v3 RawNodes that the metadata group and, later, every
// replicated partition share.
//
// Raft is used as a library. The host owns each group's RawNode and drives
// it: one ticker ticks every group's clock; messages from the transport
// are stepped into their group as they arrive; proposals are handed to the
// group at once. None of that does I/O. A group that has something to do
// (a Ready) is put on the dirty list, and a pool of workers (16, or 4 per
// GOMAXPROCS; a worker spends most of its time in fsync) takes the dirty
// groups from it, oldest first: an idle worker is signalled, a busy one
// takes the next group itself when it is done, so no dispatcher stands
// between a message and its Ready. A group is with one worker at a time;
// work that arrives meanwhile sends it round again afterwards. For each
// group's Ready a worker, in the order Raft requires:
//
//  1. sends a leader's appends and heartbeats at once, so that the
//     followers' fsyncs overlap its own (Raft thesis 10.2.1);
//  2. saves the HardState, entries and snapshot (Storage.Save fsyncs
//     before it returns);
//  3. sends the Ready's other messages (and the quiescence protocol's,
//     queued for the group), one Transport.Send per destination;
//  4. applies a received snapshot, then the committed entries (after
//     giving configuration changes to Raft), to the StateMachine;
//  5. takes a snapshot every SnapshotEvery entries (StateMachine.Snapshot,
//     Storage.Compact);
//  6. calls Advance.
//
// A group's Ready does not wait for other groups' fsyncs: its answers
// leave as soon as its own Save is done. (An earlier design ran rounds
// that waited for every group of the round and sent the round's messages
// together; with several busy groups a commit then waited for the slowest
// fsync of each round.) Batching to a node happens in the transport, whose
// writer puts whatever the groups sent meanwhile into one frame. A
// destination that is not reachable is reported to the group
// (ReportUnreachable, so its leader probes instead of streaming), and
// snapshots sent are reported finished (or failed when the node was
// unreachable); the transport does not acknowledge delivery, so the
// follower's answer corrects Raft.
//
// Messages never leave before the state they depend on is durable (but
// for a leader's appends, which carry nothing the leader must have saved).
// A busy group costs one Tick per tick interval and no goroutine; an idle
// one is quiesced (quiesce.go): not ticked at all, woken by a message, a
// proposal or a change in a peer node's liveness. Stats reports the host's
// groups and counters for metrics.
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
// list and the groups' queued and running flags) is a leaf: nothing is
// taken while it is held. Host.quiet.mu (which quiesced groups wake on which
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
