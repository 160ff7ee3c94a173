package broker

// Moving leaders and replicas of replicated partitions
// (docs/clustering.md, "Moving replicas and leaders").
//
// Leaders. A partition's preferred leader is the first replica of its
// assignment. Only the Raft leader of the partition's group can hand its
// leadership over (multiraft.Host.TransferLeadership), so every way of
// electing the preferred leader ends on the node that leads:
//   - ElectLeaders proposes the metadata command elect_preferred_leaders;
//     every node sees it applied (the follower's observer) and the one
//     that leads each named partition transfers it (transferToPreferred);
//   - automatic balancing (BalanceLeaders) runs on every node over the
//     partitions it leads.
//
// A leader hands over only to a preferred replica in its ISR: Raft's
// transfer would wait for a lagging one to catch up and give up after an
// election timeout, leaving the partition without a leader meanwhile.
//
// Replicas. A move recorded by meta.Store.ReassignPartitions is carried
// out by the partition's Raft leader, one membership change at a time
// (StepReassignments, called periodically): add each new replica as a
// learner, promote it once caught up, hand leadership to a target replica
// if this leader leaves, remove the leaving replicas while a majority of
// the remaining voters is active, and, once the voters are exactly the
// target, complete the move in the metadata. Every node follows the
// assignment (Reconcile, moveReplicas): a node that gains a replica opens
// it empty and joins the group with no voters of its own, to be filled
// from the leader's log; a node that loses one closes it and deletes its
// data once the move is complete.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/meta"
	"go.etcd.io/raft/v3"
)

// replicaOf returns this node's replica of partition p of topic; nil
// unless it is replicated here.
func (b *Broker) replicaOf(topic string, p int32) *replica {
	b.mu.RLock()
	t := b.topics[topic]
	b.mu.RUnlock()
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return nil
	}
	return t.Partitions[p].repl
}

// transferToPreferred makes this node, where it leads a partition named,
// hand leadership to the partition's preferred replica when that replica
// is in the ISR. It runs for every elect_preferred_leaders command
// applied here; partitions led elsewhere are their leader's to move.
func (b *Broker) transferToPreferred(topic string, partitions []int32) {
	mt, ok := b.meta.Topic(topic)
	if !ok || mt.Replicas == nil {
		return
	}
	for _, p := range partitions {
		if p < 0 || int(p) >= len(mt.Replicas) || len(mt.Replicas[p]) == 0 {
			continue
		}
		if r := b.replicaOf(topic, p); r != nil {
			r.handTo(mt.Replicas[p][0])
		}
	}
}

// handTo transfers leadership to node to if this replica leads and to is
// in its ISR; it reports whether it asked Raft to.
func (r *replica) handTo(to int32) bool {
	if cluster.NodeID(to) == r.self {
		return false
	}
	st := r.state()
	// The ISR keeps a node that just died for up to the lag time; Raft
	// would then stop taking produces for an election timeout in vain.
	if st.Leader != uint64(r.self) || !slices.Contains(st.ISR, to) || !r.alive(uint64(to)) {
		return false
	}
	return r.host.TransferLeadership(r.gid, cluster.NodeID(to)) == nil
}

// LeaderInfo is one replicated partition as leader balancing sees it.
type LeaderInfo struct {
	Topic     string
	Partition int32
	// Preferred is the partition's preferred replica.
	Preferred int32
	// Leader is its current leader; 0 when unknown.
	Leader int32
	// PreferredInSync: the leader counts the preferred replica in its ISR
	// (known only where this node leads).
	PreferredInSync bool
}

// PlanBalance is Kafka's leader balancing over partitions: a broker's
// imbalance is the share of the partitions it is preferred for that it
// does not lead; for every broker whose imbalance exceeds percent, the
// partitions it is preferred for that self leads, with it in sync, are
// returned, to be handed to it. Deterministic, for the balancer and its
// tests.
func PlanBalance(parts []LeaderInfo, self int32, percent int) []LeaderInfo {
	total := map[int32]int{}
	notLed := map[int32]int{}
	for _, p := range parts {
		total[p.Preferred]++
		if p.Leader != p.Preferred {
			notLed[p.Preferred]++
		}
	}
	var out []LeaderInfo
	for _, p := range parts {
		if p.Leader != self || p.Preferred == self || !p.PreferredInSync {
			continue
		}
		if notLed[p.Preferred]*100 > percent*total[p.Preferred] {
			out = append(out, p)
		}
	}
	return out
}

// Leaders describes the replicated partitions held here for PlanBalance.
func (b *Broker) Leaders() []LeaderInfo {
	var out []LeaderInfo
	for _, t := range b.Topics() {
		for _, p := range t.Partitions {
			r := p.repl
			if r == nil || int(p.Index) >= len(t.Replicas) || len(t.Replicas[p.Index]) == 0 {
				continue
			}
			st := r.state()
			pref := t.Replicas[p.Index][0]
			out = append(out, LeaderInfo{Topic: t.Name, Partition: p.Index, Preferred: pref,
				Leader: int32(st.Leader), PreferredInSync: slices.Contains(st.ISR, pref)})
		}
	}
	return out
}

// BalanceLeaders is one round of automatic leader balancing on this
// node: it hands the partitions PlanBalance picks to their preferred
// replicas, and returns how many it asked Raft to move.
func (b *Broker) BalanceLeaders(percent int) int {
	if b.opts.Replication.Host == nil {
		return 0
	}
	moved := 0
	for _, p := range PlanBalance(b.Leaders(), int32(b.opts.NodeID), percent) {
		if r := b.replicaOf(p.Topic, p.Partition); r != nil && r.handTo(p.Preferred) {
			moved++
			b.log.Info("leader balancing: handing a partition to its preferred replica", "topic", p.Topic, "partition", p.Partition, "to", p.Preferred)
		}
	}
	return moved
}

// groupVoters are the voters of the group as this node has applied its
// configuration (which a reassignment changes), else the assignment's.
func groupVoters(st raft.Status, assigned []cluster.NodeID) []cluster.NodeID {
	ids := st.Config.Voters.IDs()
	if len(ids) == 0 {
		return assigned
	}
	out := make([]cluster.NodeID, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// joinsByMove reports whether this node gains partition i of tp by a
// move in progress: its replica must then join the group with no voters
// of its own (bootstrapping one with the assignment would make a second,
// conflicting history of the group's first entries).
func (b *Broker) joinsByMove(tp *Topic, i int32) bool {
	mv, ok := tp.Reassignments[i]
	return ok && !slices.Contains(mv.Before(), int32(b.opts.NodeID))
}

// reassignRetry is how long a membership change proposed by
// StepReassignments is given to take effect before it is proposed again
// (Raft turns a change proposed while another is pending into an empty
// entry).
const reassignRetry = 2 * time.Second

// StepReassignments takes one step of every move in progress whose
// partition this node leads (see the file comment). Call it
// periodically; it is idempotent and a move survives a leader change,
// since the next leader goes on from the group's configuration.
func (b *Broker) StepReassignments(now time.Time) {
	host := b.opts.Replication.Host
	if host == nil {
		return
	}
	for _, mt := range b.meta.Topics() {
		for p, mv := range mt.Reassignments {
			r := b.replicaOf(mt.Name, p)
			if r == nil || !r.started {
				continue
			}
			done, err := r.stepMove(mv.Target, now)
			if err != nil {
				b.log.Debug("reassignment step", "topic", mt.Name, "partition", p, "err", err)
				continue
			}
			if done {
				err := b.meta.CompleteReassignment(mt.Name, mt.ID, p, mv.Target)
				if err != nil && !errors.Is(err, meta.ErrNoReassignment) {
					b.log.Warn("completing a reassignment", "topic", mt.Name, "partition", p, "err", err)
				} else if err == nil {
					b.log.Info("reassignment complete", "topic", mt.Name, "partition", p, "replicas", mv.Target)
				}
			}
		}
	}
}

// stepMove takes the next membership change of this replica's group
// towards target, if it leads; done when the voters are the target and
// there are no learners.
func (r *replica) stepMove(target []int32, now time.Time) (done bool, err error) {
	st, err := r.host.Status(r.gid)
	if err != nil || st.RaftState != raft.StateLeader {
		return false, err
	}
	voters, learners, err := r.host.Membership(r.gid)
	if err != nil {
		return false, err
	}
	want := make([]cluster.NodeID, len(target))
	for i, id := range target {
		want[i] = cluster.NodeID(id)
	}
	r.isrMu.Lock()
	last, lastAt := r.moveStep, r.moveStepAt
	r.isrMu.Unlock()
	propose := func(step string, fn func(context.Context, cluster.GroupID, cluster.NodeID) error, node cluster.NodeID) error {
		key := step + "/" + time.Duration(node).String()
		if key == last && now.Sub(lastAt) < reassignRetry {
			return nil // proposed already: wait for it to apply
		}
		r.isrMu.Lock()
		r.moveStep, r.moveStepAt = key, now
		r.isrMu.Unlock()
		r.log.Info("reassignment: membership change", "change", step, "node", node)
		return fn(context.Background(), r.gid, node)
	}
	// 1. New replicas join as learners.
	for _, n := range want {
		if !slices.Contains(voters, n) && !slices.Contains(learners, n) {
			return false, propose("add-learner", r.host.AddLearner, n)
		}
	}
	// 2. Caught-up learners of the target become voters.
	caught := r.host.CaughtUpLearners(r.gid)
	for _, n := range learners {
		if slices.Contains(want, n) {
			if !slices.Contains(caught, n) {
				return false, nil // still catching up
			}
			return false, propose("promote", r.host.PromoteLearner, n)
		}
	}
	// 3. Leaving replicas go, this leader last (it hands over first).
	for _, n := range learners {
		if !slices.Contains(want, n) {
			return false, propose("remove", r.host.RemoveMember, n)
		}
	}
	for _, n := range voters {
		if slices.Contains(want, n) || n == r.self {
			continue
		}
		remaining := slices.DeleteFunc(slices.Clone(voters), func(v cluster.NodeID) bool { return v == n })
		if !quorumAfter(remaining, r.host.ActiveVoters(r.gid)) {
			return false, nil // removing it now would leave no active majority
		}
		return false, propose("remove", r.host.RemoveMember, n)
	}
	if !slices.Contains(want, r.self) {
		// This leader leaves: hand over to a target replica in sync.
		isr := r.state().ISR
		for _, n := range want {
			if slices.Contains(isr, int32(n)) && slices.Contains(voters, n) {
				return false, propose("transfer", func(_ context.Context, g cluster.GroupID, to cluster.NodeID) error {
					return r.host.TransferLeadership(g, to)
				}, n)
			}
		}
		return false, nil
	}
	return len(learners) == 0 && len(voters) == len(want), nil
}

// quorumAfter reports whether a majority of remaining voters is active.
func quorumAfter(remaining, active []cluster.NodeID) bool {
	n := 0
	for _, v := range remaining {
		if slices.Contains(active, v) {
			n++
		}
	}
	return n > len(remaining)/2
}

// ReassignmentCheck checks a requested target for partition p of topic
// before it is recorded: the target must name distinct registered nodes
// (one or more: a partition of one replica becomes a Raft group of one
// voter when it is moved, replica_convert.go), and a compacted partition
// of one replica is refused (its log's gaps could not be copied to new
// replicas at the same offsets). nil target: a cancellation, always
// allowed.
func (b *Broker) ReassignmentCheck(mt meta.Topic, p int32, target []int32) error {
	if target == nil {
		return nil
	}
	if b.opts.Replication.Host == nil || mt.Replicas == nil || int(p) >= len(mt.Replicas) {
		return ErrInvalidReplicaAssignment
	}
	if len(target) == 0 {
		return ErrInvalidReplicaAssignment // as Kafka: an empty replica list
	}
	if len(mt.Replicas[p]) == 1 && !mt.IsGrouped(p) && b.resolve(mt.Configs).compact {
		return fmt.Errorf("%w: a compacted partition of one replica cannot be moved", ErrInvalidReplicationFactor)
	}
	return b.checkAssignment([][]int32{target}, 1)
}

// movedPartitions reopens, in next (the topic as the metadata now has
// it, whose partitions are copied from cur), the partitions whose
// holding by this node changed between cur and next: one gained is opened
// (joining its group), one lost gets a stand-in. It returns the replaced
// partitions, for the caller to delete once next is installed.
func (b *Broker) movedPartitions(cur, next *Topic) (replaced []*Partition, err error) {
	n := min(len(cur.Partitions), len(next.Partitions))
	var grouped []int32 // plain logs held before and after that become groups
	for i := range int32(n) {
		if b.holds(cur, i) && b.holds(next, i) && !b.replicated(cur, i) && b.replicated(next, i) {
			grouped = append(grouped, i)
			continue
		}
		if b.holds(cur, i) == b.holds(next, i) {
			continue
		}
		if b.holds(next, i) {
			// What a replica that left before may have left.
			if err := removeReplicaDirs(b.partitionDir(next.Name, i)); err != nil {
				return replaced, err
			}
		}
		p, err := b.openNewPartition(next, i)
		if err != nil {
			for k := range replaced { // undo: next is not installed
				j := replaced[k].Index
				next.Partitions[j].log.Close()
				next.Partitions[j] = replaced[k]
			}
			return nil, err
		}
		replaced = append(replaced, next.Partitions[i])
		next.Partitions[i] = p
		b.log.Info("replica moved", "topic", next.Name, "partition", i, "held", b.holds(next, i))
	}
	// Once nothing above can fail (an error there leaves cur installed,
	// with its plain logs open).
	for _, i := range grouped {
		b.groupPlainLog(cur, next, i)
	}
	return replaced, nil
}

// groupPlainLog reopens partition i, a plain log in cur, as the Raft group
// of one voter that a move makes of it in next (replica_convert.go). Its
// appends and reads fail meanwhile (the log is closed), and clients retry.
// If that fails, the plain log is opened again, and the move waits for the
// next restart to try again.
func (b *Broker) groupPlainLog(cur, next *Topic, i int32) {
	old := cur.Partitions[i]
	if err := old.log.Close(); err != nil {
		b.log.Warn("closing a plain log to make it a Raft group", "topic", next.Name, "partition", i, "err", err)
	}
	p, err := b.openNewPartition(next, i)
	if err == nil {
		next.Partitions[i] = p
		return
	}
	b.log.Error("a moved partition of one replica could not become a Raft group; it stays a plain log until a restart", "topic", next.Name, "partition", i, "err", err)
	if p, err = b.openNewPartition(cur, i); err != nil {
		b.log.Error("reopening the plain log", "topic", next.Name, "partition", i, "err", err)
		return // the closed log answers errors until a restart
	}
	next.Partitions[i] = p
}

// replicasEqual reports whether two assignments are the same.
func replicasEqual(a, b [][]int32) bool {
	return slices.EqualFunc(a, b, func(x, y []int32) bool { return slices.Equal(x, y) })
}

// removeReplicaDirs removes a partition's directory and its Raft log's.
func removeReplicaDirs(dir string) error {
	return errors.Join(os.RemoveAll(dir), os.RemoveAll(dir+".raft"))
}

// BalanceOptions are Kafka's leader balancing settings.
type BalanceOptions struct {
	// Enable is auto.leader.rebalance.enable.
	Enable bool
	// Interval is leader.imbalance.check.interval.seconds. Default 300s.
	Interval time.Duration
	// Percentage is leader.imbalance.per.broker.percentage.
	Percentage int
}

// balanceConfigs are the balancing settings as read-only broker configs.
func (b *Broker) balanceConfigs(ro func(k, v string, t ConfigType, doc string) ConfigEntry) []ConfigEntry {
	o := b.opts.Balance
	return []ConfigEntry{
		ro("auto.leader.rebalance.enable", strconv.FormatBool(o.Enable), TypeBoolean, "Hand partitions back to their preferred replicas when leadership is imbalanced."),
		ro("leader.imbalance.check.interval.seconds", strconv.FormatInt(int64(o.interval()/time.Second), 10), TypeLong, "How often leader imbalance is checked."),
		ro("leader.imbalance.per.broker.percentage", strconv.Itoa(o.Percentage), TypeInt, "The share of a broker's preferred partitions it may not lead before they are handed back."),
	}
}

func (o BalanceOptions) interval() time.Duration {
	if o.Interval <= 0 {
		return 300 * time.Second
	}
	return o.Interval
}

// moveStepInterval is how often the moves in progress are stepped.
const moveStepInterval = 200 * time.Millisecond

// RunPartitionMoves steps the moves in progress (StepReassignments) and,
// when enabled, balances leaders every Balance.Interval, until stop is
// closed. A broker without replication returns at once.
func (b *Broker) RunPartitionMoves(stop <-chan struct{}) {
	if b.opts.Replication.Host == nil {
		return
	}
	tick := time.NewTicker(moveStepInterval)
	defer tick.Stop()
	nextBalance := time.Now().Add(b.opts.Balance.interval())
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if b.moving() {
				b.StepReassignments(now)
			}
			if b.opts.Balance.Enable && !now.Before(nextBalance) {
				nextBalance = now.Add(b.opts.Balance.interval())
				b.BalanceLeaders(b.opts.Balance.Percentage)
			}
		}
	}
}

// moving reports whether a topic open here has a move in progress; it
// reads the broker's topics only, so an idle cluster pays no metadata
// copy per step.
func (b *Broker) moving() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, t := range b.topics {
		if len(t.Reassignments) > 0 {
			return true
		}
	}
	return false
}
