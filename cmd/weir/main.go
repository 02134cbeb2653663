// Command weir is the Weir edge gateway. All the work is in package cli.
package main

import (
	"os"

	"github.com/weir-edge/weir/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
