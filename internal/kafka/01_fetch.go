package kafka

// Fetch, versions 4-12.
//
// Sessionless: Sluice never creates fetch sessions (KIP-227), so it answers
// every full fetch in full with SessionID 0, which clients treat as "no
// session". As in Kafka, the epoch decides what a request is: epoch -1
// (a sessionless fetch, whatever its session id: some clients send -1/-1)
// and epoch 0 (asking for a new session) are full fetches; any other epoch
// continues a session, and since we gave none it gets
// FETCH_SESSION_ID_NOT_FOUND. Long poll: when fewer than MinBytes are ready
// the request waits up to MaxWaitMillis for any requested partition's high
// watermark to move; a partition error (an unknown partition, an offset out
// of range, a storage error) ends the wait at once, as in Kafka, so a
// client that asks for a wait of days learns of its error now. Limits follow KIP-74: whole batches only, up to
// PartitionMaxBytes per partition and MaxBytes overall, except that the
// first batch found is returned even if it is larger, so a consumer can
// always make progress. The partition decides what each isolation level
// sees and reports the high watermark and last stable offset; a
// read_committed fetch also gets the aborted transactions overlapping
// what it read, whose batches the client drops.

import (
	"time"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFetch(c *conn, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if incrementalFetch(req) {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	total, failed := fetchOnce(c, req, resp)
	if total >= int(req.MinBytes) || failed || req.MaxWaitMillis <= 0 {
		return resp, nil
	}
	// Long poll: wait for any partition to move, then read again.
	changed := watchPartitions(c, req)
	timer := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	defer timer.Stop()
	for total < int(req.MinBytes) && !failed {
		select {
		case <-changed.C:
		case <-timer.C:
			changed.stop()
			return resp, nil
		case <-c.ctx.Done():
			changed.stop()
			return nil, c.ctx.Err()
		}
		changed.stop()
		changed = watchPartitions(c, req)
		*resp = *req.ResponseKind().(*kmsg.FetchResponse)
		total, failed = fetchOnce(c, req, resp)
	}
	changed.stop()
	return resp, nil
}

// incrementalFetch reports whether req continues a fetch session (v7+):
// any epoch but -1 (sessionless) and 0 (a new session, which we answer
// without creating one). Kafka decides by the epoch alone.
func incrementalFetch(req *kmsg.FetchRequest) bool {
	return req.Version >= 7 && req.SessionEpoch != -1 && req.SessionEpoch != 0
}

// fetchOnce fills resp from the logs and returns the bytes of records in it
// and whether any partition has an error.
func fetchOnce(c *conn, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) (total int, failed bool) {
	budget := int(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = 1 << 30
	}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		t, topicOK := c.s.broker.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.PreferredReadReplica = -1
			// Kafka always sends a records field, empty (size 0) when
			// there is nothing, never null (-1): librdkafka rejects a
			// negative MessageSetSize as a protocol parse failure.
			sp.RecordBatches = []byte{}
			if !topicOK || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p := t.Partitions[rp.Partition]
			limit := min(int(rp.PartitionMaxBytes), budget-total)
			readPartition(p, rp.FetchOffset, limit, total == 0, isolation(req.IsolationLevel), &sp)
			total += len(sp.RecordBatches)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			failed = failed || sp.ErrorCode != 0
		}
	}
	return total, failed
}

// readPartition reads up to limit bytes at offset into sp. When first is
// false, a batch larger than limit is left for the next fetch.
func readPartition(p *broker.Partition, offset int64, limit int, first bool, iso broker.IsolationLevel, sp *kmsg.FetchResponseTopicPartition) {
	start, hw, lso := p.Offsets()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, lso, start
	end := hw
	if iso == broker.ReadCommitted {
		end = lso
	}
	if offset < start || offset > hw {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return
	}
	if offset >= end || (limit <= 0 && !first) {
		return
	}
	data, err := p.Read(offset, max(limit, 1), iso)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		if storageFailure(err) {
			sp.ErrorCode = kerr.KafkaStorageError.Code
		}
		return
	}
	if len(data) == 0 || (len(data) > limit && !first) {
		return
	}
	sp.RecordBatches = data
	if iso == broker.ReadCommitted {
		for _, a := range p.AbortedIn(offset, data) {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
			sp.AbortedTransactions = append(sp.AbortedTransactions, at)
		}
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

func watchPartitions(c *conn, req *kmsg.FetchRequest) watcher {
	w := watcher{C: make(chan struct{}, 1), done: make(chan struct{})}
	for _, rt := range req.Topics {
		t, ok := c.s.broker.Topic(rt.Topic)
		if !ok {
			continue
		}
		for _, rp := range rt.Partitions {
			if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				continue
			}
			ch := t.Partitions[rp.Partition].Watch()
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
	}
	return w
}
