// Command idleconns measures what idle AMQP connections cost a server:
// it reads the server's resident memory (VmRSS in /proc/PID/status),
// opens -n connections with amqp091-go (each with one channel) and
// leaves them idle, reads it again, closes them all and reads it a last
// time, the lowest within -settle of the close.
//
//	go run ./scripts/idleconns -pid $(pidof sluice) -url amqp://guest:guest@127.0.0.1:5672/ -n 5000
//
// The client needs -n descriptors: raise its limit (ulimit -n) first.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	pid := flag.Int("pid", 0, "server process id")
	url := flag.String("url", "amqp://guest:guest@127.0.0.1:5672/", "AMQP URL")
	n := flag.Int("n", 5000, "connections")
	settle := flag.Duration("settle", 60*time.Second, "how long to watch memory fall after the close")
	flag.Parse()
	if *pid == 0 {
		log.Fatal("-pid is required")
	}
	before := rss(*pid)
	conns := make([]*amqp.Connection, *n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := amqp.Dial(*url)
			if err != nil {
				log.Fatalf("connection %d: %v", i, err)
			}
			if _, err := c.Channel(); err != nil {
				log.Fatalf("channel %d: %v", i, err)
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // the server settles (GC after the handshakes)
	open := rss(*pid)
	for _, c := range conns {
		c.Close()
	}
	// The lowest reading within -settle of the close.
	after, waited := open, time.Duration(0)
	for start := time.Now(); time.Since(start) < *settle; {
		time.Sleep(time.Second)
		if r := rss(*pid); r < after {
			after, waited = r, time.Since(start)
		}
	}
	fmt.Printf("connections %d: rss before %d KiB, open %d KiB (%.1f KiB each), after close %d KiB (%d KiB above before, %v after the close)\n",
		*n, before, open, float64(open-before)/float64(*n), after, after-before, waited.Round(time.Second))
}

// rss is the process's VmRSS in KiB.
func rss(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	log.Fatal("no VmRSS")
	return 0
}
