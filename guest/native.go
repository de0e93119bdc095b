//go:build !wasip1

package guest

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// Outside WebAssembly the SDK runs jobs as ordinary programs so that handlers
// can be developed and unit-tested natively: stdin in, stdout out, state in
// memory, logs to stderr. HTTP is denied, as it is for a job with no grants.

var (
	mu    sync.Mutex
	state = map[string][]byte{}
)

func hostLog(level Level, msg string) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", levelName(level), msg)
}

func levelName(l Level) string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return "info"
}

func stateGet(key string) ([]byte, bool, error) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := state[key]
	return append([]byte(nil), v...), ok, nil
}

func stateSet(key string, value []byte) error {
	mu.Lock()
	defer mu.Unlock()
	state[key] = append([]byte(nil), value...)
	return nil
}

func stateDelete(key string) error {
	mu.Lock()
	defer mu.Unlock()
	delete(state, key)
	return nil
}

func fetch(req Request) (*Response, error) {
	return nil, codeErr(req.Method+" "+req.URL, codeDenied)
}

// Handle runs h on stdin and writes its output to stdout; on error it prints
// the error to stderr and exits with status 1.
func Handle(h Handler) {
	if err := run(h, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(h Handler, stdin io.Reader, stdout io.Writer) error {
	in, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	out, err := h(in)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
