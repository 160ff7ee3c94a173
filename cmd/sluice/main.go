// Command sluice is the Sluice message broker and its command-line client.
package main

import (
	"os"

	"github.com/sluice-mq/sluice/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
