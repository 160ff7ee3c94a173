// Package meta holds Sluice's cluster metadata — topics, their configs and
// producer ids for Kafka; vhosts, users, permissions, exchanges, queues and
// bindings for AMQP — as a replicated-state-machine in miniature. (Consumer
// group offsets moved to the broker's offsets store; the offset commands
// remain so that older logs replay and the broker can carry their offsets
// over.)
//
// Every change is a [Command]: the name of its kind and its payload. Each
// kind is registered once, in commands.go, with its name and payload type;
// the payload checks and applies itself. A Store method builds the command (generating
// any random id or timestamp there, never later), and hands it to one entry
// point, propose, which
//
//  1. checks it against the current state, so that a request that cannot
//     succeed is refused without touching the disk;
//  2. appends it to the command log and fsyncs, coalescing concurrent
//     proposals into one write and one fsync (group commit);
//  3. applies it to the in-memory [State] with [State.Apply] and returns the
//     result to the caller.
//
// Several commands proposed together (proposeAll: CreateTopics with many
// topics) are checked one by one and handed to the writer at once, so that
// they share one write and one fsync; each succeeds or fails on its own.
//
// A change that would change nothing (an identical Bind, an Unbind of a
// missing binding) is answered from the state without a log write. A
// command is malformed (ErrInvalidCommand) only for reasons in the command
// itself, never because of the state, so that a command that was accepted
// when proposed can never stop replay.
//
// Apply is deterministic: it reads nothing but the state and the command, so
// replaying the same log into a fresh State always yields the same state.
// The command applied live is the one decoded back from its log encoding, so
// live application and replay cannot differ. On one node the log is a local
// file; in a cluster (OpenCluster, cluster.go) the log is the metadata Raft
// group's: propose checks the command, proposes it through Raft and waits
// until this node applies it, and every node applies every committed
// command with the same Apply. Reads stay local and may lag the leader.
//
// Every SnapshotEvery commands the whole state is written as a JSON
// snapshot (temp file, fsync, rename, fsync directory) that records the
// index of the last command it contains, and a fresh log is started after
// it. Open loads the snapshot and replays the newer log; a torn or corrupt
// tail record is truncated, never a reason to refuse to start. The formats
// are described in docs/meta-format.md.
//
// A failed write or fsync of the log fails every proposal in that group and
// every later one: the store keeps serving reads but refuses writes, and
// cuts the log back to its last durable record, because after a failed
// fsync the kernel's view of the file can no longer be trusted (and a
// command answered with an error must not exist after a restart). Recover
// makes it writable again once the disk takes writes.
//
// # Concurrency and lock order
//
// Reads (Topic, Topics, Queues, ...) take Store.mu shared
// and return copies. Only the writer goroutine mutates the state, under
// Store.mu held exclusively. Proposers hold Store.closeMu shared while they hand a
// proposal to the writer, so that Close can stop the writer only after every
// accepted proposal is answered. The two locks are never held together, and
// the writer never takes closeMu.
package meta
