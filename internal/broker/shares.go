package broker

// Share groups (KIP-932): the runtime around package share's state
// machine. It reads the partitions' logs for records to hand out, waits
// for records, keeps the clock, and persists each group's state.
//
// Persistence: one file per group in DataDir/share-groups, named by the
// group's name in hex, holding the group's configs and every
// share-partition's window (start and end offsets) and the delivery counts
// of its records still to settle: "SHG1", a CRC-32C of the body, then the
// body as JSON. It is rewritten whole (temporary file, fsync, rename,
// fsync of the directory) before an acknowledgement is answered, so an
// acknowledged record is never redelivered after a crash. Acquisitions are
// not written on their own (a fetch costs no fsync): after a crash the
// records acquired since the last write are handed out again, with the
// delivery count last written. The file is small: at most the records in
// flight and released, never the backlog (docs/kafka-compatibility.md,
// "Share groups").
//
// Lock order: Shares.mu > shareGroup.mu > Partition.mu. shareGroup.mu is
// held while the log is read (no fsync); never across a write of the
// state file, which takes shareGroup.write alone.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-mq/sluice/internal/broker/share"
	"github.com/sluice-mq/sluice/internal/fsutil"
	"github.com/sluice-mq/sluice/internal/storage"
)

const shareStateMagic = "SHG1"

// Shares holds the share groups.
type Shares struct {
	b    *Broker
	dir  string
	base share.Config
	now  func() time.Time

	mu     sync.Mutex
	groups map[string]*shareGroup

	// Counters since start, for metrics.
	Acquired, Redelivered, Accepted, Released, Rejected, Archived atomic.Int64
}

type shareGroup struct {
	mu sync.Mutex
	g  *share.Group
	// changed is closed and replaced when records become available
	// without a log append (released, unlocked), to wake waiting fetches.
	changed chan struct{}
	seq     uint64 // snapshots taken

	write   sync.Mutex
	written uint64 // the newest snapshot written
}

func (b *Broker) openShares() error {
	s := &Shares{b: b, dir: filepath.Join(b.opts.DataDir, "share-groups"), base: share.DefaultConfig(), now: b.opts.Now, groups: map[string]*shareGroup{}}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".state") {
			continue
		}
		g, err := readShareState(filepath.Join(s.dir, e.Name()))
		if err != nil {
			// The state is lost, not the data: its records are handed
			// out again from the reset offset.
			b.log.Warn("share group state unreadable, starting it afresh", "file", e.Name(), "err", err)
			continue
		}
		s.groups[g.Name] = &shareGroup{g: g, changed: make(chan struct{})}
	}
	b.shares = s
	return nil
}

// Shares returns the share groups.
func (b *Broker) Shares() *Shares { return b.shares }

// Config is the effective config of a group (the defaults for an unknown
// one).
func (s *Shares) Config(group string) share.Config {
	sg := s.get(group, false)
	if sg == nil {
		return s.base
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	return share.Resolve(s.base, sg.g.Configs)
}

func (s *Shares) get(name string, create bool) *shareGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := s.groups[name]
	if sg == nil && create {
		sg = &shareGroup{g: share.NewGroup(name), changed: make(chan struct{})}
		s.groups[name] = sg
	}
	return sg
}

// Exists reports whether a share group of that name exists: a member
// joined it or its offsets were set (configs alone make no group).
func (s *Shares) Exists(name string) bool { return s.established(name) != nil }

// established returns the group if it exists as a share group.
func (s *Shares) established(name string) *shareGroup {
	sg := s.get(name, false)
	if sg == nil {
		return nil
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if !sg.g.Established {
		return nil
	}
	return sg
}

// wakeLocked wakes the fetches waiting on the group.
func (sg *shareGroup) wakeLocked() {
	close(sg.changed)
	sg.changed = make(chan struct{})
}

// topicInfos lists the topics for the assignor.
func (s *Shares) topicInfos() []share.TopicInfo {
	ts := s.b.Topics()
	out := make([]share.TopicInfo, 0, len(ts))
	for _, t := range ts {
		if t.IsInternal() {
			continue
		}
		out = append(out, share.TopicInfo{ID: share.TopicID(t.ID), Name: t.Name, Partitions: int32(len(t.Partitions))})
	}
	return out
}

// ShareHeartbeat is a ShareGroupHeartbeat.
type ShareHeartbeat struct {
	Group, MemberID      string
	Epoch                int32
	RackID               *string
	Subscribed           []string
	ClientID, ClientHost string
}

// Heartbeat joins, keeps or removes a member; it returns the answer and
// the heartbeat interval.
func (s *Shares) Heartbeat(r ShareHeartbeat) (share.HeartbeatResult, time.Duration, error) {
	sg := s.get(r.Group, r.Epoch == 0)
	if sg == nil {
		return share.HeartbeatResult{}, 0, share.ErrUnknownMember
	}
	now := s.now()
	sg.mu.Lock()
	wasEstablished := sg.g.Established
	cfg := share.Resolve(s.base, sg.g.Configs)
	released := sg.g.ExpireMembers(now, cfg.SessionTimeout, cfg.DeliveryLimit)
	res, err := sg.g.Heartbeat(r.MemberID, r.Epoch, r.RackID, r.Subscribed, r.ClientID, r.ClientHost, s.topicInfos(), now, cfg.DeliveryLimit)
	if released+res.Released > 0 {
		sg.wakeLocked()
	}
	established := !wasEstablished && sg.g.Established
	sg.mu.Unlock()
	if err != nil && r.Epoch == 0 {
		s.dropIfBlank(r.Group) // a refused join leaves no group behind
	}
	if established { // the group exists from now on, across restarts too
		if serr := s.save(sg); serr != nil {
			s.b.log.Warn("share group state not saved", "group", r.Group, "err", serr)
		}
	}
	return res, cfg.HeartbeatInterval, err
}

// dropIfBlank forgets a group that holds nothing: no member, no
// share-partition, no config.
func (s *Shares) dropIfBlank(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := s.groups[name]
	if sg == nil {
		return
	}
	sg.mu.Lock()
	blank := len(sg.g.Members) == 0 && len(sg.g.Partitions) == 0 && len(sg.g.Configs) == 0
	sg.mu.Unlock()
	if blank {
		delete(s.groups, name)
	}
}

// ShareAck is one acknowledgement batch.
type ShareAck struct {
	TP          share.TP
	First, Last int64
	Types       []int8
}

// ShareFetchRequest is a ShareFetch or (Fetch false) a ShareAcknowledge.
type ShareFetchRequest struct {
	Group, MemberID string
	SessionEpoch    int32
	Fetch           bool
	Add, Forget     []share.TP
	Acks            []ShareAck
	MaxWait         time.Duration
	MaxRecords      int
	MaxBytes        int
	// Conn identifies the client connection: a session opened on it ends
	// when it closes (ConnClosed), as Kafka ties share sessions to
	// connections.
	Conn any
}

// SharePartitionResult is one partition's part of the answer: records
// handed out (whole batches, with the ranges of offsets acquired in them)
// or an error, and the outcome of its acknowledgements.
type SharePartitionResult struct {
	TP       share.TP
	Err      error
	Acked    bool
	AckErr   error
	Records  []byte
	Acquired []share.Range
}

// ShareFetchResult is a ShareFetch's or ShareAcknowledge's answer.
type ShareFetchResult struct {
	Err          error // for the whole request
	LockDuration time.Duration
	Partitions   []SharePartitionResult
}

// Fetch serves a ShareFetch (or, with Fetch false, a ShareAcknowledge):
// it applies the session epoch and the acknowledgements, persists them,
// then acquires records from the session's partitions, waiting up to
// MaxWait for some when none are there and nothing was acknowledged.
func (s *Shares) Fetch(ctx context.Context, r ShareFetchRequest) ShareFetchResult {
	sg := s.get(r.Group, false)
	if sg == nil {
		return ShareFetchResult{Err: share.ErrUnknownMember}
	}
	now := s.now()
	sg.mu.Lock()
	cfg := share.Resolve(s.base, sg.g.Configs)
	out := ShareFetchResult{LockDuration: cfg.LockDuration}
	if sg.g.ExpireMembers(now, cfg.SessionTimeout, cfg.DeliveryLimit) > 0 {
		sg.wakeLocked()
	}
	parts, err := sg.g.OpenSession(r.MemberID, r.SessionEpoch, r.Fetch, r.Add, r.Forget, r.Conn, cfg.DeliveryLimit)
	if err == nil && r.SessionEpoch == 0 && len(r.Acks) > 0 {
		err = share.ErrInvalidRequest
	}
	if err != nil {
		sg.mu.Unlock()
		out.Err = err
		return out
	}
	acked := map[share.TP]*SharePartitionResult{}
	var order []share.TP
	dirty := false
	for _, a := range r.Acks {
		pr := acked[a.TP]
		if pr == nil {
			pr = &SharePartitionResult{TP: a.TP, Acked: true}
			acked[a.TP] = pr
			order = append(order, a.TP)
		}
		if pr.AckErr != nil {
			continue
		}
		p := sg.g.Partitions[a.TP]
		if p == nil {
			pr.AckErr = share.ErrInvalidRecordState
			continue
		}
		if _, archived := p.Expire(now, cfg.DeliveryLimit); archived > 0 {
			s.Archived.Add(int64(archived))
		}
		c, err := p.Ack(r.MemberID, a.First, a.Last, a.Types, now.Add(cfg.LockDuration), cfg.DeliveryLimit)
		if err != nil {
			pr.AckErr = err
			continue
		}
		s.Accepted.Add(int64(c.Accepted))
		s.Released.Add(int64(c.Released))
		s.Rejected.Add(int64(c.Rejected))
		s.Archived.Add(int64(c.Archived))
		if c.Accepted+c.Released+c.Rejected+c.Archived > 0 {
			dirty = true
		}
		if c.Accepted+c.Released+c.Rejected+c.Archived > 0 {
			sg.wakeLocked() // records to hand out again, or room under max.record.locks
		}
	}
	if r.SessionEpoch == -1 {
		if sg.g.CloseSession(r.MemberID, cfg.DeliveryLimit) > 0 {
			sg.wakeLocked()
			dirty = true
		}
	}
	sg.mu.Unlock()
	if dirty {
		if err := s.save(sg); err != nil {
			for _, pr := range acked {
				if pr.AckErr == nil {
					pr.AckErr = fmt.Errorf("%w: share group state: %v", ErrStorage, err)
				}
			}
		}
	}
	for _, tp := range order {
		out.Partitions = append(out.Partitions, *acked[tp])
	}
	if !r.Fetch || r.SessionEpoch == -1 {
		return out
	}

	fetchable := make([]share.TP, 0, len(parts))
	sg.mu.Lock()
	for tp := range parts {
		fetchable = append(fetchable, tp)
	}
	sg.mu.Unlock()
	sort.Slice(fetchable, func(i, j int) bool {
		a, b := fetchable[i], fetchable[j]
		if c := bytes.Compare(a.Topic[:], b.Topic[:]); c != 0 {
			return c < 0
		}
		return a.Partition < b.Partition
	})
	deadline := now.Add(r.MaxWait)
	for {
		got, watch, next, changed := s.acquire(sg, r, fetchable)
		got = mergeResults(out.Partitions, got)
		if len(r.Acks) > 0 || anyRecords(got) || !s.now().Before(deadline) {
			out.Partitions = got
			return out
		}
		wait := deadline.Sub(s.now())
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.now()), time.Millisecond))
		}
		if !waitAny(ctx, wait, changed, watch) {
			out.Partitions = got
			return out
		}
	}
}

// ConnClosed ends the member's share session opened on conn, if it is
// still the member's session, and releases the records the member holds
// for others at once: a consumer that vanished does not keep them until
// their locks time out. The member stays until its session timeout.
func (s *Shares) ConnClosed(group, member string, conn any) {
	sg := s.get(group, false)
	if sg == nil {
		return
	}
	sg.mu.Lock()
	cfg := share.Resolve(s.base, sg.g.Configs)
	closed, n := sg.g.CloseConnSession(member, conn, cfg.DeliveryLimit)
	if n > 0 {
		sg.wakeLocked()
	}
	sg.mu.Unlock()
	if closed && n > 0 {
		if err := s.save(sg); err != nil {
			s.b.log.Warn("share group state not saved", "group", group, "err", err)
		}
	}
}

func anyRecords(rs []SharePartitionResult) bool {
	for _, r := range rs {
		if len(r.Acquired) > 0 || r.Err != nil {
			return true
		}
	}
	return false
}

// mergeResults adds the fetch results to the acknowledgement results, one
// entry per partition.
func mergeResults(acks, fetched []SharePartitionResult) []SharePartitionResult {
	out := append([]SharePartitionResult(nil), acks...)
	for _, f := range fetched {
		i := 0
		for i < len(out) && out[i].TP != f.TP {
			i++
		}
		if i == len(out) {
			out = append(out, f)
			continue
		}
		out[i].Err, out[i].Records, out[i].Acquired = f.Err, f.Records, f.Acquired
	}
	return out
}

// waitAny waits up to d for any channel to close; false if ctx ended.
func waitAny(ctx context.Context, d time.Duration, changed <-chan struct{}, watch []<-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	done := make(chan struct{})
	defer close(done)
	woke := make(chan struct{}, 1)
	for _, w := range watch {
		go func() {
			select {
			case <-w:
				select {
				case woke <- struct{}{}:
				default:
				}
			case <-done:
			}
		}()
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-changed:
	case <-woke:
	}
	return true
}

// acquire hands out records of the session's partitions to the member. It
// returns what it acquired, the channels to wait on for more and the
// earliest lock deadline.
func (s *Shares) acquire(sg *shareGroup, r ShareFetchRequest, tps []share.TP) ([]SharePartitionResult, []<-chan struct{}, time.Time, <-chan struct{}) {
	now := s.now()
	sg.mu.Lock()
	defer sg.mu.Unlock()
	cfg := share.Resolve(s.base, sg.g.Configs)
	budget := r.MaxRecords
	if budget <= 0 {
		budget = 500
	}
	maxBytes := r.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 50 << 20
	}
	var out []SharePartitionResult
	var watch []<-chan struct{}
	var next time.Time
	for _, tp := range tps {
		pr, n, ch := s.acquirePartitionLocked(sg, cfg, tp, r.MemberID, now, budget, maxBytes)
		budget -= n
		maxBytes -= len(pr.Records)
		if ch != nil {
			watch = append(watch, ch)
		}
		if pr.Err != nil || n > 0 {
			out = append(out, pr)
		}
		if p := sg.g.Partitions[tp]; p != nil {
			if d := p.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if budget <= 0 || maxBytes <= 0 {
			break
		}
	}
	return out, watch, next, sg.changed
}

// acquirePartitionLocked acquires up to budget records of one partition.
func (s *Shares) acquirePartitionLocked(sg *shareGroup, cfg share.Config, tp share.TP, member string, now time.Time, budget, maxBytes int) (SharePartitionResult, int, <-chan struct{}) {
	pr := SharePartitionResult{TP: tp}
	t, ok := s.b.TopicByID(TopicID(tp.Topic))
	if !ok || t.IsInternal() {
		pr.Err = ErrUnknownTopic
		return pr, 0, nil
	}
	if tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
		pr.Err = ErrUnknownPartition
		return pr, 0, nil
	}
	part := t.Partitions[tp.Partition]
	watch := part.Watch()
	logStart, hw, lso := part.Offsets()
	sp := sg.g.Partition(tp)
	if !sp.Initialised() {
		if cfg.Earliest {
			sp.Init(logStart)
		} else {
			sp.Init(lso)
		}
	}
	if sp.End > hw { // the log was truncated under the window
		sp.Reset(hw)
	}
	sp.Clamp(logStart)
	if _, archived := sp.Expire(now, cfg.DeliveryLimit); archived > 0 {
		s.Archived.Add(int64(archived))
	}
	room := min(budget, sp.Room(cfg.MaxRecordLocks))
	if room <= 0 {
		return pr, 0, watch
	}
	lockUntil := now.Add(cfg.LockDuration)
	var batches []byte
	next := int64(-1) // the offset after the last batch taken
	take := func(b []byte, h storage.BatchHeader) {
		if h.LastOffset() >= next {
			batches = append(batches, b[:h.Size()]...)
			next = h.LastOffset() + 1
		}
	}
	n := 0
	// Released records first: they are below the end, in offset order.
	again := sp.AcquireAvailable(member, lockUntil, room)
	for _, rg := range again {
		n += int(rg.Last - rg.First + 1)
		s.Redelivered.Add(rg.Last - rg.First + 1)
		for off := max(rg.First, next); off <= rg.Last; {
			data, err := part.Read(off, maxBytes, ReadCommitted)
			if err != nil || len(data) == 0 {
				break
			}
			moved := false
			eachShareBatch(data, func(b []byte, h storage.BatchHeader) bool {
				if h.BaseOffset > rg.Last {
					off = rg.Last + 1
					return false
				}
				if h.LastOffset() >= off {
					take(b, h)
					off, moved = h.LastOffset()+1, true
				}
				return off <= rg.Last
			})
			if !moved {
				break
			}
		}
	}
	pr.Acquired = again
	// Then new records from the end of the window.
	for n < room && len(batches) < maxBytes {
		from := sp.End
		data, err := part.Read(from, maxBytes-len(batches), ReadCommitted)
		if err != nil {
			if n == 0 {
				pr.Err = err
			}
			break
		}
		if len(data) == 0 {
			break
		}
		aborted := part.AbortedIn(from, data)
		eachShareBatch(data, func(b []byte, h storage.BatchHeader) bool {
			last := h.LastOffset()
			if last < sp.End {
				return true
			}
			if h.Attributes&0x20 != 0 || isAborted(h, aborted) {
				sp.Skip(last + 1)
				return true
			}
			first := max(h.BaseOffset, sp.End)
			end := min(last, first+int64(room-n)-1)
			rg := sp.AcquireNew(member, lockUntil, first, end)
			pr.Acquired = append(pr.Acquired, rg)
			n += int(end - first + 1)
			take(b, h)
			return n < room
		})
		if sp.End == from {
			break
		}
	}
	s.Acquired.Add(int64(n))
	if n > 0 {
		pr.Records = batches
	}
	return pr, n, watch
}

// eachShareBatch calls fn with each whole batch of data and its header.
func eachShareBatch(data []byte, fn func([]byte, storage.BatchHeader) bool) {
	for len(data) >= batchHeaderBytes {
		h, err := storage.ParseBatchHeader(data)
		if err != nil || h.Size() < batchHeaderBytes || h.Size() > len(data) {
			return
		}
		if !fn(data, h) {
			return
		}
		data = data[h.Size():]
	}
}

// isAborted reports whether a transactional batch belongs to an aborted
// transaction.
func isAborted(h storage.BatchHeader, aborted []AbortedTxn) bool {
	if h.Attributes&0x10 == 0 {
		return false
	}
	for _, a := range aborted {
		if a.ProducerID == h.ProducerID && h.BaseOffset >= a.FirstOffset && h.BaseOffset <= a.LastOffset {
			return true
		}
	}
	return false
}

// shareStateFile is a group's persisted state.
type shareStateFile struct {
	Name        string               `json:"name"`
	Established bool                 `json:"established,omitempty"`
	Configs     map[string]string    `json:"configs,omitempty"`
	Partitions  []sharePartitionFile `json:"partitions,omitempty"`
}

type sharePartitionFile struct {
	Topic     string `json:"topic"` // the topic id in hex
	Partition int32  `json:"partition"`
	share.PartitionState
}

func (s *Shares) path(group string) string {
	return filepath.Join(s.dir, hex.EncodeToString([]byte(group))+".state")
}

// save persists a group's state: the newest snapshot wins, and a save
// returns once a snapshot at least as new as the state it saw is durable.
func (s *Shares) save(sg *shareGroup) error {
	sg.mu.Lock()
	f := shareStateFile{Name: sg.g.Name, Established: sg.g.Established, Configs: sg.g.Configs}
	for tp, p := range sg.g.Partitions {
		if !p.Initialised() {
			continue
		}
		f.Partitions = append(f.Partitions, sharePartitionFile{Topic: hex.EncodeToString(tp.Topic[:]), Partition: tp.Partition, PartitionState: p.State()})
	}
	sg.seq++
	seq := sg.seq
	sg.mu.Unlock()
	sort.Slice(f.Partitions, func(i, j int) bool {
		a, b := f.Partitions[i], f.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	sg.write.Lock()
	defer sg.write.Unlock()
	if sg.written >= seq {
		return nil
	}
	if err := writeFileDurably(s.path(f.Name), encodeShareState(body)); err != nil {
		return err
	}
	sg.written = seq
	return nil
}

func encodeShareState(body []byte) []byte {
	out := make([]byte, 0, len(body)+8)
	out = append(out, shareStateMagic...)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(out, body...)
}

func decodeShareState(data []byte) (*share.Group, error) {
	if len(data) < 8 || string(data[:4]) != shareStateMagic {
		return nil, errors.New("not a share group state file")
	}
	body := data[8:]
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != binary.BigEndian.Uint32(data[4:]) {
		return nil, errors.New("share group state: checksum mismatch")
	}
	var f shareStateFile
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, err
	}
	g := share.NewGroup(f.Name)
	g.Established = f.Established || len(f.Partitions) > 0
	for k, v := range f.Configs {
		g.Configs[k] = v
	}
	for _, p := range f.Partitions {
		var tp share.TP
		id, err := hex.DecodeString(p.Topic)
		if err != nil || len(id) != 16 {
			return nil, fmt.Errorf("share group state: topic id %q", p.Topic)
		}
		copy(tp.Topic[:], id)
		tp.Partition = p.Partition
		g.Partitions[tp] = share.RestorePartition(p.PartitionState)
	}
	return g, nil
}

func readShareState(path string) (*share.Group, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeShareState(data)
}

// writeFileDurably replaces path with data: written to a temporary file,
// synced, renamed over path, and the directory synced.
func writeFileDurably(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return fsutil.SyncDir(filepath.Dir(path))
}
