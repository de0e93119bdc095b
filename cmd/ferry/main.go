// Command ferry is Ferry's command-line interface. main only wires the
// process (signals, streams, exit code); every command lives in its own file
// as newXCmd and is testable through doMain.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := doMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
