package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluice-mq/sluice/internal/config"
)

// BenchmarkAMQPPublishConsume runs the whole AMQP path in one process: a
// publisher with confirms (window 256) and a consumer with prefetch 100
// acking each message, 1 KiB persistent messages on a durable queue,
// fsync always. It includes amqp091-go's own cost; profile it with
// -cpuprofile or -memprofile and read the server's packages.
//
//	go test -run - -bench AMQPPublishConsume -benchmem ./internal/server/
func BenchmarkAMQPPublishConsume(b *testing.B) {
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.AMQPAddr, cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	s, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	url := fmt.Sprintf("amqp://guest:guest@%s/", s.AMQPAddr())

	pc, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	cc, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	pch, err := pc.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pch.QueueDeclare("bench", true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if err := pch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	const window = 256
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, window))
	cch, err := cc.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := cch.Qos(100, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := cch.Consume("bench", "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}

	consumed := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			d, ok := <-deliveries
			if !ok {
				consumed <- fmt.Errorf("deliveries ended after %d", i)
				return
			}
			if err := d.Ack(false); err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()

	msg := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: make([]byte, 1024)}
	b.SetBytes(1024)
	b.ResetTimer()
	outstanding := 0
	for i := 0; i < b.N; i++ {
		if outstanding == window {
			if c := <-confirms; !c.Ack {
				b.Fatal("nacked")
			}
			outstanding--
		}
		if err := pch.Publish("", "bench", false, false, msg); err != nil {
			b.Fatal(err)
		}
		outstanding++
	}
	for ; outstanding > 0; outstanding-- {
		if c := <-confirms; !c.Ack {
			b.Fatal("nacked")
		}
	}
	if err := <-consumed; err != nil {
		b.Fatal(err)
	}
}
