// Command gen writes package wire's methods_gen.go from the AMQP 0-9-1 JSON
// specification. Run it through go generate in internal/amqp/wire.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sluice-mq/sluice/internal/amqp/wire/gen/spec"
)

func main() {
	in := flag.String("spec", "../../../../shared/spec/amqp-rabbitmq-0.9.1.json", "path to the JSON specification")
	out := flag.String("o", "methods_gen.go", "output file")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	s, err := spec.Load(data)
	if err != nil {
		return err
	}
	src, err := spec.Generate(s)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}
