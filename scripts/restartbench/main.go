// Command restartbench measures a restart with many durable queues: the
// time from exec to the first basic.get (amqp091-go) that returns a
// message from one named queue, with the server's CPU seconds and peak
// resident memory at that moment and once the server has gone quiet.
//
// It builds a data directory once (fill), then starts each binary on a
// fresh copy of it, alternating the binaries for -rounds rounds:
//
//	go run ./scripts/restartbench -bins /tmp/sluice-main,/tmp/sluice-new -queues 10000 -rounds 3
//
// With -list the clock stops at the first complete queue listing of the
// management API instead (every queue listed with its count), which needs
// every queue's count.
//
// The data directory: -queues durable queues rq-0 ... each holding three
// persistent messages; in every second queue the first is acked, in every
// fifth the second is taken with basic.get and left unacked when the
// filling broker stops (it comes back, flagged redelivered). The probe gets
// from rq-<queues/2>. A broker is stopped with SIGTERM after each start.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	bins := flag.String("bins", "", "comma-separated sluice binaries to compare; the first builds the data directory")
	queues := flag.Int("queues", 10000, "durable queues in the data directory")
	rounds := flag.Int("rounds", 3, "starts of each binary, alternated")
	template := flag.String("template", "", "the data directory to start from, built first if it does not exist (default: a temporary one)")
	settle := flag.Duration("settle", 60*time.Second, "at most this long to wait for the server to go quiet after the get")
	extra := flag.String("args", "", "extra server arguments, space-separated")
	listing := flag.Bool("list", false, "time the first complete queue listing of the management API (GET /api/queues/%2F, every queue with its count) instead of the first basic.get")
	straceDir := flag.String("strace", "", "count the server's fsync, open and truncate calls with strace -c, attached at start, into files in this directory (slows the server: report the counts, not the times)")
	flag.Parse()
	list := strings.Split(*bins, ",")
	if *bins == "" {
		log.Fatal("-bins is required")
	}
	work, err := os.MkdirTemp("", "restartbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	tmpl := *template
	if tmpl == "" {
		tmpl = filepath.Join(work, "template")
	}
	if _, err := os.Stat(tmpl); err != nil {
		t0 := time.Now()
		if err := fill(list[0], tmpl, *queues); err != nil {
			log.Fatal(err)
		}
		log.Printf("filled %d queues in %s", *queues, time.Since(t0).Round(time.Millisecond))
	}
	target := "rq-" + strconv.Itoa(*queues/2)
	for r := 0; r < *rounds; r++ {
		for _, bin := range list {
			var trace string
			if *straceDir != "" {
				trace = filepath.Join(*straceDir, fmt.Sprintf("strace-%d-%s.txt", r+1, filepath.Base(bin)))
			}
			res, err := probe(bin, tmpl, filepath.Join(work, "run"), target, *settle, strings.Fields(*extra), trace, *listing, *queues)
			load, _ := os.ReadFile("/proc/loadavg")
			if err != nil {
				fmt.Printf("round %d %s: %v\n", r+1, bin, err)
				continue
			}
			fmt.Printf("round %d %s: get %.2fs cpu %.2fs rss %d MB | quiet %.2fs cpu %.2fs peak-rss %d MB | load %s\n",
				r+1, bin, res.get.Seconds(), res.getCPU, res.getRSS>>10, res.quiet.Seconds(), res.quietCPU, res.peakRSS>>10,
				strings.Fields(string(load))[0])
		}
	}
}

type result struct {
	get, quiet       time.Duration
	getCPU, quietCPU float64
	getRSS, peakRSS  int64 // KiB
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type server struct {
	cmd  *exec.Cmd
	amqp string
	http string // host:port
}

func start(bin, dir string, extra []string) (*server, error) {
	a, h := freePort(), freePort()
	args := append([]string{"server", "--data-dir", dir, "--amqp-addr", a, "--kafka-addr", freePort(),
		"--http-addr", h, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &server{cmd: cmd, amqp: "amqp://guest:guest@" + a + "/", http: h}, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func dial(url string, within time.Duration) (*amqp.Connection, error) {
	deadline := time.Now().Add(within)
	for {
		c, err := amqp.Dial(url)
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fill builds the data directory with bin.
func fill(bin, dir string, n int) error {
	s, err := start(bin, dir, nil)
	if err != nil {
		return err
	}
	defer s.stop()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	var keep []*amqp.Connection // unacked gets stay unacked until the stop
	var mu sync.Mutex
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			errs <- func() error {
				c, err := dial(s.amqp, 30*time.Second)
				if err != nil {
					return err
				}
				mu.Lock()
				keep = append(keep, c)
				mu.Unlock()
				ch, err := c.Channel()
				if err != nil {
					return err
				}
				if err := ch.Confirm(false); err != nil {
					return err
				}
				var last *amqp.DeferredConfirmation
				for i := w; i < n; i += workers {
					q := "rq-" + strconv.Itoa(i)
					if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
						return err
					}
					for k := 0; k < 3; k++ {
						last, err = ch.PublishWithDeferredConfirm("", q, false, false, amqp.Publishing{
							DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprintf("%s message %d", q, k)),
						})
						if err != nil {
							return err
						}
					}
				}
				if last != nil && !last.Wait() {
					return errors.New("publish nacked")
				}
				for i := w; i < n; i += workers {
					q := "rq-" + strconv.Itoa(i)
					if i%2 == 0 {
						d, ok, err := ch.Get(q, false)
						if err != nil || !ok {
							return fmt.Errorf("get %s: %v %v", q, ok, err)
						}
						d.Ack(false)
					}
					if i%5 == 0 {
						if _, ok, err := ch.Get(q, false); err != nil || !ok {
							return fmt.Errorf("get %s: %v %v", q, ok, err)
						}
					}
				}
				return nil
			}()
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func probe(bin, tmpl, dir, target string, settle time.Duration, extra []string, trace string, list bool, queues int) (result, error) {
	os.RemoveAll(dir)
	if out, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("copy: %v %s", err, out)
	}
	exec.Command("sync").Run()
	t0 := time.Now()
	s, err := start(bin, dir, extra)
	if err != nil {
		return result{}, err
	}
	defer s.stop()
	pid := s.cmd.Process.Pid
	if trace != "" {
		st := exec.Command("strace", "-c", "-f", "-p", strconv.Itoa(pid), "-o", trace, "-e", "trace=fsync,fdatasync,openat,ftruncate")
		if err := st.Start(); err != nil {
			return result{}, err
		}
		defer func() { st.Process.Signal(os.Interrupt); st.Wait() }()
	}
	var res result
	if list {
		if err := listAll(s.http, queues); err != nil {
			return res, err
		}
	} else if err := getOne(s.amqp, target); err != nil {
		return res, err
	}
	res.get = time.Since(t0)
	res.getCPU = cpuSeconds(pid)
	res.getRSS = status(pid, "VmRSS:")
	// Quiet: the server used under 2% of a core over a second.
	prev := res.getCPU
	for deadline := time.Now().Add(settle); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		now := cpuSeconds(pid)
		if now-prev < 0.02 {
			break
		}
		prev = now
	}
	res.quiet = time.Since(t0)
	res.quietCPU = cpuSeconds(pid)
	res.peakRSS = status(pid, "VmHWM:")
	return res, nil
}

// getOne polls until basic.get returns a message from queue.
func getOne(url, queue string) error {
	c, err := dial(url, 5*time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	for {
		_, ok, err := ch.Get(queue, true)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// listAll polls the management API until it lists n queues, the rq-
// ones each with the messages the data directory leaves in it.
func listAll(addr string, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/queues/%2F?columns=name,messages", nil)
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		var qs []struct {
			Name     string `json:"name"`
			Messages int    `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&qs)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if len(qs) != n {
			return fmt.Errorf("listed %d queues, want %d", len(qs), n)
		}
		for _, q := range qs {
			i, _ := strconv.Atoi(strings.TrimPrefix(q.Name, "rq-"))
			want := 3
			if i%2 == 0 {
				want-- // the first acked
			}
			if q.Messages != want {
				return fmt.Errorf("%s lists %d messages, want %d", q.Name, q.Messages, want)
			}
		}
		return nil
	}
	return errors.New("no listing within 5 minutes")
}

func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

func status(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}
