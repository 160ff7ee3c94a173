package wire

import (
	"bytes"
	"os"
	"testing"

	"github.com/sluice-mq/sluice/internal/amqp/wire/gen/spec"
)

// specPath is where the repository keeps RabbitMQ's JSON specification,
// relative to this package (the same path go:generate passes to ./gen).
const specPath = "../../../../shared/spec/amqp-rabbitmq-0.9.1.json"

func loadSpec(t *testing.T) *spec.Spec {
	t.Helper()
	data, err := os.ReadFile(specPath)
	if os.IsNotExist(err) {
		t.Skipf("specification not present at %s", specPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGeneratedCodeIsUpToDate(t *testing.T) {
	want, err := spec.Generate(loadSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("methods_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("methods_gen.go is out of date with the specification or the generator; run go generate ./internal/amqp/wire")
	}
}

// TestRegistryMatchesSpec checks every method of the specification decodes
// to a struct that reports the specification's ids, name and flags.
func TestRegistryMatchesSpec(t *testing.T) {
	s := loadSpec(t)
	n := 0
	for _, c := range s.Classes {
		for _, sm := range c.Methods {
			n++
			name := c.Name + "." + sm.Name
			m := NewMethod(uint16(c.ID), uint16(sm.ID))
			if m == nil {
				t.Errorf("%s: not registered", name)
				continue
			}
			if m.Name() != name || m.ClassID() != uint16(c.ID) || m.MethodID() != uint16(sm.ID) ||
				m.HasContent() != sm.Content || m.Synchronous() != sm.Synchronous {
				t.Errorf("%s: got %s %d.%d content=%t sync=%t", name, m.Name(), m.ClassID(), m.MethodID(), m.HasContent(), m.Synchronous())
			}
		}
	}
	if n != len(methodRegistry) {
		t.Errorf("registry holds %d methods, specification %d", len(methodRegistry), n)
	}
}
