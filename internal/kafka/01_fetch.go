package kafka

// Fetch, versions 4-17.
//
// Fetch sessions (KIP-227, fetch_session.go): the epoch decides what a
// request is, as in Kafka. Epoch -1 (whatever the session id: some
// clients send -1/-1) is a sessionless full fetch, epoch 0 a full fetch
// that opens a session (SessionID in the answer, 0 when the cache has no
// room), any other epoch an incremental fetch in a session, answered with
// only the partitions that have something new. From v13 topics are named
// by id; an unknown id is UNKNOWN_TOPIC_ID. v15-17 add only fields for
// follower brokers, which a single node ignores.
//
// In a cluster, a partition this broker does not lead (the server's
// Cluster says, cluster.go) is NOT_LEADER_OR_FOLLOWER, with its current
// leader from v12 and the leader's endpoint from v16 (KIP-951); a single
// node leads every partition and skips the question.
//
// Long poll: when fewer than MinBytes are ready the request waits up to
// MaxWaitMillis for any requested partition's high watermark to move; a
// partition error (an unknown partition, an offset out of range, a storage
// error) ends the wait at once, as in Kafka, so a client that asks for a
// wait of days learns of its error now. Limits follow KIP-74: whole
// batches only, up to PartitionMaxBytes per partition and MaxBytes
// overall, except that the first batch found is returned even if it is
// larger, so a consumer can always make progress. The partition decides
// what each isolation level sees and reports the high watermark and last
// stable offset; a read_committed fetch also gets the aborted transactions
// overlapping what it read, whose batches the client drops.
//
// Zero copy (Options.ZeroCopy, on a TCP connection on Linux): a
// partition's records of at least zeroCopyMinBytes are not read but held
// as a region of their segment file (broker.FileRegion, the same whole
// batches below the same visible end), which the write loop sends with
// sendfile (fetch_encode.go); the region keeps the file open until then,
// whatever retention or the cleaner do meanwhile. Every region taken is
// released exactly once: by the write loop after writing the answer, or
// here when a read is superseded (long poll) or left out (fetch session).

import (
	"errors"
	"time"

	"github.com/sluice-mq/sluice/internal/auth"
	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFetch(c *conn, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	plan, code := c.s.sessions.begin(req, time.Now())
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	results, total, failed := fetchOnce(c, req, plan)
	if total < int(req.MinBytes) && !failed && req.MaxWaitMillis > 0 {
		results = longPoll(c, req, plan, results, total)
		if results == nil {
			return nil, c.ctx.Err()
		}
	}
	if plan.session != nil {
		resp.SessionID = plan.session.id
	}
	results = c.s.sessions.finish(plan, results)
	fillFetchResponse(resp, results)
	if !c.s.single && req.Version >= 16 {
		c.fetchLeaderEndpoints(resp)
	}
	var regions []*broker.FileRegion
	for i, r := range results {
		if r.region != nil {
			if regions == nil {
				regions = make([]*broker.FileRegion, len(results))
			}
			regions[i] = r.region
		}
	}
	if regions != nil {
		return &fetchAnswer{FetchResponse: resp, regions: regions}, nil
	}
	return resp, nil
}

// fetchAnswer is a Fetch answer some of whose partitions' records are file
// regions (zero copy), one entry per partition in the answer's order. The
// write loop writes it (writeResponse) and releases the regions.
type fetchAnswer struct {
	*kmsg.FetchResponse
	regions []*broker.FileRegion
}

// release lets the regions' files close.
func (a *fetchAnswer) release() {
	for _, r := range a.regions {
		if r != nil {
			r.Release()
		}
	}
}

// copyIn reads the regions into the partitions' RecordBatches (for an
// answer kmsg must encode) and releases them.
func (a *fetchAnswer) copyIn() error {
	k := 0
	for i := range a.Topics {
		for j := range a.Topics[i].Partitions {
			if r := a.regions[k]; r != nil {
				data := make([]byte, r.Len())
				if err := r.ReadAt(data, 0); err != nil {
					return err
				}
				a.Topics[i].Partitions[j].RecordBatches = data
			}
			k++
		}
	}
	a.release()
	return nil
}

// releaseResults releases the regions of results that will not be sent.
func releaseResults(results []fetchResult) {
	for _, r := range results {
		if r.region != nil {
			r.region.Release()
		}
	}
}

// longPoll waits for any partition of plan to move and reads again, until
// MinBytes are ready, a partition fails or MaxWaitMillis pass. It returns
// the last read, or nil when the connection closes.
func longPoll(c *conn, req *kmsg.FetchRequest, plan fetchPlan, results []fetchResult, total int) []fetchResult {
	failed := false
	changed := watchPartitions(c, plan)
	defer func() { changed.stop() }()
	timer := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	defer timer.Stop()
	for total < int(req.MinBytes) && !failed {
		select {
		case <-changed.C:
		case <-timer.C:
			return results
		case <-c.ctx.Done():
			releaseResults(results)
			return nil
		}
		changed.stop()
		changed = watchPartitions(c, plan)
		releaseResults(results)
		results, total, failed = fetchOnce(c, req, plan)
	}
	return results
}

// fetchResult is the answer for one partition of a plan.
type fetchResult struct {
	key fetchKey
	// name is the topic's name, when known.
	name string
	sp   kmsg.FetchResponseTopicPartition
	// region, when set, holds the records instead of sp.RecordBatches.
	region *broker.FileRegion
}

// size is the bytes of records in r.
func (r *fetchResult) size() int {
	if r.region != nil {
		return r.region.Len()
	}
	return len(r.sp.RecordBatches)
}

// fillFetchResponse groups results into resp's topics, consecutive
// partitions of one topic under one entry.
func fillFetchResponse(resp *kmsg.FetchResponse, results []fetchResult) {
	for _, r := range results {
		n := len(resp.Topics)
		if n == 0 || resp.Topics[n-1].Topic != r.key.topic || resp.Topics[n-1].TopicID != r.key.id {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = r.key.topic, r.key.id
			resp.Topics = append(resp.Topics, st)
			n++
		}
		resp.Topics[n-1].Partitions = append(resp.Topics[n-1].Partitions, r.sp)
	}
}

// resolve finds the partition a target names, or the error to answer.
func resolve(c *conn, t fetchTarget) (*broker.Partition, string, int16) {
	var topic *broker.Topic
	var ok bool
	if t.topic != "" || t.id == ([16]byte{}) {
		if !c.allowedTopic(t.topic, auth.OpRead) { // as Kafka: before existence
			return nil, "", errTopicAuth.Code
		}
		topic, ok = c.s.broker.Topic(t.topic)
		if !ok {
			return nil, "", kerr.UnknownTopicOrPartition.Code
		}
	} else if topic, ok = c.s.broker.TopicByID(broker.TopicID(t.id)); !ok {
		return nil, "", kerr.UnknownTopicID.Code
	} else if !c.allowedTopic(topic.Name, auth.OpRead) {
		return nil, "", errTopicAuth.Code
	}
	if t.part < 0 || int(t.part) >= len(topic.Partitions) {
		return nil, topic.Name, kerr.UnknownTopicOrPartition.Code
	}
	return topic.Partitions[t.part], topic.Name, 0
}

// fetchOnce reads every target of plan from the logs and returns the
// answers, the bytes of records in them and whether any partition has an
// error.
func fetchOnce(c *conn, req *kmsg.FetchRequest, plan fetchPlan) (results []fetchResult, total int, failed bool) {
	budget := int(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = 1 << 30
	}
	results = make([]fetchResult, 0, len(plan.targets))
	for _, t := range plan.targets {
		r := fetchResult{key: t.fetchKey, sp: kmsg.NewFetchResponseTopicPartition()}
		sp := &r.sp
		sp.Partition = t.part
		sp.PreferredReadReplica = -1
		// Kafka always sends a records field, empty (size 0) when
		// there is nothing, never null (-1): librdkafka rejects a
		// negative MessageSetSize as a protocol parse failure.
		sp.RecordBatches = []byte{}
		p, name, code := resolve(c, t)
		r.name = name
		if code == 0 && !c.s.single {
			code = c.fetchLeader(name, t.part, req.Version, sp)
		}
		if code != 0 {
			sp.ErrorCode = code
		} else {
			limit := min(int(t.maxBytes), budget-total)
			r.region = readPartition(p, t.offset, limit, total == 0, isolation(req.IsolationLevel), c.zeroCopy, sp)
			total += r.size()
		}
		failed = failed || sp.ErrorCode != 0
		results = append(results, r)
	}
	return results, total, failed
}

// zeroCopyMinBytes is the smallest partition read sent from its file
// rather than copied: below it the extra system calls of sendfile (one
// more write for the framing before it) cost more than the copy saves
// (docs/benchmarks.md, "Fetch").
const zeroCopyMinBytes = 16 << 10

// readPartition reads up to limit bytes at offset into sp. When first is
// false, a batch larger than limit is left for the next fetch. With
// zeroCopy, a read of at least zeroCopyMinBytes is returned as a region of
// its segment file instead of in sp.RecordBatches.
func readPartition(p *broker.Partition, offset int64, limit int, first bool, iso broker.IsolationLevel, zeroCopy bool, sp *kmsg.FetchResponseTopicPartition) *broker.FileRegion {
	start, hw, lso := p.Offsets()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, lso, start
	end := hw
	if iso == broker.ReadCommitted {
		end = lso
	}
	if offset < start || offset > hw {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return nil
	}
	if offset >= end || (limit <= 0 && !first) {
		return nil
	}
	fail := func(err error) {
		sp.ErrorCode = errorCode(err)
		if storageFailure(err) {
			sp.ErrorCode = kerr.KafkaStorageError.Code
		}
	}
	if zeroCopy && limit >= zeroCopyMinBytes {
		r, err := p.ReadRegion(offset, max(limit, 1), iso, zeroCopyMinBytes)
		switch {
		case errors.Is(err, broker.ErrNoRegions):
			// An in-memory log: read it.
		case err != nil:
			fail(err)
			return nil
		case r == nil:
			return nil
		case r.Len() > limit && !first:
			r.Release()
			return nil
		case r.Bytes() != nil: // under zeroCopyMinBytes: read, as Read would
			sp.RecordBatches = r.Bytes()
			r.Release()
			abortedIn(p, offset, r.End(), iso, sp)
			return nil
		default:
			abortedIn(p, offset, r.End(), iso, sp)
			return r
		}
	}
	data, err := p.Read(offset, max(limit, 1), iso)
	if err != nil {
		fail(err)
		return nil
	}
	if len(data) == 0 || (len(data) > limit && !first) {
		return nil
	}
	sp.RecordBatches = data
	if iso == broker.ReadCommitted {
		abortedIn(p, offset, -1, iso, sp)
	}
	return nil
}

// abortedIn fills in, for a read_committed read from offset to end (-1:
// the end of sp.RecordBatches), the aborted transactions it overlaps.
func abortedIn(p *broker.Partition, offset, end int64, iso broker.IsolationLevel, sp *kmsg.FetchResponseTopicPartition) {
	if iso != broker.ReadCommitted {
		return
	}
	var aborted []broker.AbortedTxn
	if end < 0 {
		aborted = p.AbortedIn(offset, sp.RecordBatches)
	} else {
		aborted = p.AbortedBetween(offset, end)
	}
	for _, a := range aborted {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		sp.AbortedTransactions = append(sp.AbortedTransactions, at)
	}
}

// isolation is the core's isolation level for a request's (Kafka: 0
// read_uncommitted, 1 read_committed).
func isolation(level int8) broker.IsolationLevel {
	if level == 1 {
		return broker.ReadCommitted
	}
	return broker.ReadUncommitted
}

// watcher merges the change notifications of many partitions into one
// channel. stop releases its goroutines.
type watcher struct {
	C    chan struct{}
	done chan struct{}
}

func (w watcher) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

func watchPartitions(c *conn, plan fetchPlan) watcher {
	w := watcher{C: make(chan struct{}, 1), done: make(chan struct{})}
	for _, t := range plan.targets {
		p, _, code := resolve(c, t)
		if code != 0 {
			continue
		}
		ch := p.Watch()
		go func() {
			select {
			case <-ch:
				select {
				case w.C <- struct{}{}:
				default:
				}
			case <-w.done:
			}
		}()
	}
	return w
}
