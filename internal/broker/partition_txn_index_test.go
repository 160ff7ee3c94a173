package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-mq/sluice/internal/storage"
)

// scanCountingLog is a disk log that records where each ScanHeaders
// starts.
type scanCountingLog struct {
	diskLog
	froms *[]int64
}

func (l scanCountingLog) ScanHeaders(from int64, fn func(storage.BatchHeader) bool) error {
	*l.froms = append(*l.froms, from)
	return l.diskLog.ScanHeaders(from, fn)
}

// txnLogFixture writes, into a log in dir of small segments, rounds of
// transactions of three producers (each round: producer 1 commits, 2
// aborts, 3 spans the round and the next before it commits or aborts),
// and leaves producer 3's last transaction open.
func txnLogFixture(t *testing.T, dir string, rounds int) {
	t.Helper()
	l, err := openDiskLog(dir, storage.Options{SegmentBytes: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPartition("t", 0, l, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data := func(pid int64, i int) []byte {
		return keyedBatch(t, 1000, pid, transactionalBit, []kv{{key: []byte(fmt.Sprintf("k%d", i)), value: make([]byte, 150)}})
	}
	for r := range rounds {
		appendRaw(t, p, data(1, r))
		appendRaw(t, p, data(2, r))
		appendRaw(t, p, data(3, r))
		appendRaw(t, p, keyedBatch(t, 1000, -1, 0, []kv{{key: []byte("plain"), value: make([]byte, 150)}}))
		appendRaw(t, p, marker(t, 1000, 1, true))
		appendRaw(t, p, marker(t, 1000, 2, false))
		if r%2 == 1 {
			appendRaw(t, p, marker(t, 1000, 3, r%4 == 1))
		}
	}
	appendRaw(t, p, data(3, rounds))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// openCounting opens the partition over the log in dir, recording where
// its scans start.
func openCounting(t *testing.T, dir string) (*Partition, *[]int64) {
	t.Helper()
	l, err := storage.Open(dir, storage.Options{SegmentBytes: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	froms := new([]int64)
	p, err := newPartition("t", 0, scanCountingLog{diskLog{l}, froms}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return p, froms
}

type txnView struct {
	Aborted []AbortedTxn
	Open    []OpenTxn
	LSO     int64
}

func viewTxns(p *Partition) txnView {
	_, _, lso := p.Offsets()
	p.mu.Lock()
	defer p.mu.Unlock()
	return txnView{Aborted: append([]AbortedTxn(nil), p.txns.aborted...), Open: openList(p.txns.open), LSO: lso}
}

// TestTxnIndexPersisted: once the closed segments' summaries are written,
// a partition opens to the same aborted index, open transactions and LSO
// as by scanning the whole log, and scans for them only from the active
// segment; with one summary torn, from that segment on, until
// persistTxnIndex writes it again. (A summary of a segment that changed
// is storage's TestSegmentSidecar.)
func TestTxnIndexPersisted(t *testing.T) {
	dir := t.TempDir()
	txnLogFixture(t, dir, 40)

	p, froms := openCounting(t, dir)
	want := viewTxns(p)
	if len(want.Aborted) < 40 || len(want.Open) != 1 {
		t.Fatalf("fixture: %d aborted, %d open transactions", len(want.Aborted), len(want.Open))
	}
	if (*froms)[len(*froms)-1] != 0 {
		t.Fatalf("without summaries the scans start at %v, want 0", *froms)
	}
	if err := p.persistTxnIndex(); err != nil {
		t.Fatal(err)
	}
	segs := p.log.(cleanableLog).Segments()
	if len(segs) < 10 {
		t.Fatalf("%d segments: want many", len(segs))
	}
	sidecars, _ := filepath.Glob(filepath.Join(dir, "*.sidecar"))
	if len(sidecars) != len(segs)-1 {
		t.Fatalf("%d sidecars for %d closed segments", len(sidecars), len(segs)-1)
	}
	p.log.Close()

	reopen := func(wantFrom int64) {
		t.Helper()
		p, froms := openCounting(t, dir)
		if got := viewTxns(p); !reflect.DeepEqual(got, want) {
			t.Fatalf("reopened with summaries:\n%+v\nwant (by scanning):\n%+v", got, want)
		}
		// The producer state is rebuilt from the last segments' headers
		// (rebuildProducersLocked): scans from the one before the active
		// segment are that.
		floor := min(wantFrom, segs[len(segs)-2].Base)
		found := false
		for _, f := range *froms {
			found = found || f == wantFrom
			if f < floor {
				t.Fatalf("a scan from %d, want none below %d (%v)", f, floor, *froms)
			}
		}
		if !found {
			t.Fatalf("no scan from %d: %v", wantFrom, *froms)
		}
		p.log.Close()
	}
	active := segs[len(segs)-1]
	reopen(active.Base)

	// A torn summary in the middle: that segment and the rest are scanned.
	mid := segs[len(segs)/2]
	name := filepath.Join(dir, fmt.Sprintf("%020d.sidecar", mid.Base))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	reopen(mid.Base)

	// persistTxnIndex writes it again.
	p, _ = openCounting(t, dir)
	if err := p.persistTxnIndex(); err != nil {
		t.Fatal(err)
	}
	p.log.Close()
	reopen(active.Base)
}

// FuzzTxnSummary: the summary decoder never panics, and a summary
// encodes and decodes to itself.
func FuzzTxnSummary(f *testing.F) {
	f.Add(txnSummary{aborted: []AbortedTxn{{1, 2, 3}}, open: []OpenTxn{{4, 5, 6}}}.encode())
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeTxnSummary(b)
		if err != nil {
			return
		}
		again, err := decodeTxnSummary(s.encode())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
		}
	})
}
