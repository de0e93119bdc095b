package wasmrt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/abi"
	"github.com/ferryrun/ferry/runtime/engine"
	"github.com/ferryrun/ferry/runtime/state"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

func TestModule_Invoke_Examples(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	kib := bytes.Repeat([]byte("x"), 1024)
	mib := bytes.Repeat([]byte{7}, 1<<20)
	sum := sha256.Sum256(mib)
	tests := []struct {
		name  string
		wasm  func(t testing.TB) []byte
		input []byte
		want  string
		shape abi.Shape
	}{
		{"echo reactor 1KiB", func(t testing.TB) []byte { return wat(t, "echo") }, kib, string(kib), abi.Reactor},
		{"echo empty input", func(t testing.TB) []byte { return wat(t, "echo") }, nil, "", abi.Reactor},
		{"plain WASI command without marker", func(t testing.TB) []byte { return wat(t, "cat") }, []byte("hello"), "hello", abi.Command},
		{"go squaring reactor", func(t testing.TB) []byte { return goJob(t, "incredible-squaring", examples.Reactor) }, []byte("12345"), "152399025", abi.Reactor},
		{"go squaring u64 max", func(t testing.TB) []byte { return goJob(t, "incredible-squaring", examples.Reactor) }, []byte("18446744073709551615"), "340282366920938463426481119284349108225", abi.Reactor},
		{"go squaring command", func(t testing.TB) []byte { return goJob(t, "incredible-squaring", examples.Command) }, []byte("3"), "9", abi.Command},
		{"go sha256 1MiB", func(t testing.TB) []byte { return goJob(t, "sha256", examples.Reactor) }, mib, hex.EncodeToString(sum[:]), abi.Reactor},
		{"go json transform", func(t testing.TB) []byte { return goJob(t, "jsontransform", examples.Reactor) },
			[]byte(`{"items":[{"name":"b","price":2.5,"qty":2},{"name":"a","price":1,"qty":1}]}`), `{"count":2,"total":6,"names":["a","b"]}`, abi.Reactor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, r, tc.wasm(t), ModuleConfig{})
			assert.Equal(t, tc.shape, m.Info().Shape)
			for range 2 { // twice: the second call runs on another instance
				res, err := m.Invoke(ctx, tc.input)
				require.NoError(t, err)
				assert.Equal(t, tc.want, string(res.Output))
				assert.NotZero(t, res.PeakMemoryBytes)
			}
		})
	}
}

func TestModule_Invoke_StatefulCounter(t *testing.T) {
	ctx := context.Background()
	store, err := state.OpenBolt(filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer store.Close()
	var logs bytes.Buffer
	r := newRuntime(t, Config{State: store, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	m := load(t, r, goJob(t, "counter", examples.Reactor), ModuleConfig{Name: "counter"})
	assert.Contains(t, m.Info().Capabilities, abi.CapState)
	for i, want := range []string{"1", "2", "12"} {
		in := []byte("")
		if i == 2 {
			in = []byte("10")
		}
		res, err := m.Invoke(ctx, in, WithInvocationID(fmt.Sprintf("inv-%d", i)))
		require.NoError(t, err)
		assert.Equal(t, want, string(res.Output))
	}
	v, ok, err := store.Get(ctx, "counter", "counter")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "12", string(v))
	assert.Contains(t, logs.String(), `"job":"counter"`)
	assert.Contains(t, logs.String(), `"invocation_id":"inv-2"`)
	assert.Contains(t, logs.String(), `counter is now 12`)

	_, err = m.Invoke(ctx, []byte("not a number"))
	assert.ErrorIs(t, err, ErrGuestError)

	_, err = r.Load(ctx, goJob(t, "counter", examples.Reactor), ModuleConfig{Reuse: true})
	assert.ErrorIs(t, err, ErrReuseNotPure)
}

func TestModule_Invoke_StateDeniedWithoutStore(t *testing.T) {
	r, err := New(context.Background(), Config{CacheDir: testCacheDir(t)})
	require.NoError(t, err)
	defer r.Close(context.Background())
	m := load(t, r, goJob(t, "counter", examples.Reactor), ModuleConfig{})
	_, err = m.Invoke(context.Background(), nil)
	var je *JobError
	require.ErrorAs(t, err, &je)
	assert.Equal(t, KindGuestError, je.Kind)
	assert.Contains(t, je.Message, "denied")
}

func TestModule_Invoke_Fetcher(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://not-allowed.invalid/", http.StatusFound)
		case "/big":
			w.Write(bytes.Repeat([]byte("b"), 2<<10))
		default:
			fmt.Fprintf(w, "hello from %s", r.URL.Path)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	r := newRuntime(t, Config{})
	wasm := goJob(t, "fetcher", examples.Reactor)

	m := load(t, r, wasm, ModuleConfig{AllowHosts: []string{u.Host}, Limits: Limits{MaxHTTPResponseBytes: 1 << 10}})
	assert.False(t, m.Deterministic(), "network jobs default to the real clock")
	res, err := m.Invoke(ctx, []byte(srv.URL+"/path"))
	require.NoError(t, err)
	assert.Equal(t, "hello from /path", string(res.Output))

	for _, tc := range []struct{ name, path, want string }{
		{"redirect to a host not allowed", "/redirect", "host call failed"},
		{"response over the limit", "/big", "size limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Invoke(ctx, []byte(srv.URL+tc.path))
			assert.ErrorIs(t, err, ErrGuestError)
			assert.ErrorContains(t, err, tc.want)
		})
	}

	denied := load(t, r, wasm, ModuleConfig{Name: "no-grants"})
	_, err = denied.Invoke(ctx, []byte(srv.URL+"/path"))
	assert.ErrorIs(t, err, ErrGuestError)
	assert.ErrorContains(t, err, "denied")
}

func TestRuntime_Load_BadModules(t *testing.T) {
	r := newRuntime(t, Config{})
	echo := wat(t, "echo")
	tests := []struct {
		name string
		wasm []byte
		want error
		msg  string
	}{
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), abi.ErrNotWasm, "not a WebAssembly module"},
		{"empty", nil, abi.ErrNotWasm, "not a WebAssembly module"},
		{"truncated", echo[:len(echo)-7], abi.ErrMalformed, "truncated"},
		{"unknown ABI version", wat(t, "abiv99"), abi.ErrABIVersion, "declares Ferry ABI v99"},
		{"missing allocator", wat(t, "noalloc"), abi.ErrMissingExport, "ferry_alloc"},
		{"unsupported import", wat(t, "badimport"), abi.ErrUnsupportedImport, "env.host_secret"},
		{"corrupt body", corruptCode(echo), engine.ErrCompile, "compile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Load(context.Background(), tc.wasm, ModuleConfig{})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.msg)
			assert.NotContains(t, err.Error(), "\n", "one-line message")
		})
	}
	// Still healthy.
	m := load(t, r, echo, ModuleConfig{})
	res, err := m.Invoke(context.Background(), []byte("ok"))
	require.NoError(t, err)
	assert.Equal(t, "ok", string(res.Output))
}

// corruptCode flips the last byte of the code section's last body (the end
// opcode) so the module parses but does not validate.
func corruptCode(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] = 0xff
	return c
}

func TestModule_Invoke_Adversarial(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	healthy := load(t, r, wat(t, "echo"), ModuleConfig{})
	lim := Limits{Timeout: 200 * time.Millisecond, MaxMemoryBytes: 4 << 20}
	tests := []struct {
		name   string
		module string
		input  []byte
		lim    Limits
		want   error
		kind   Kind
		msg    string
	}{
		{"infinite loop", "loop", nil, lim, ErrTimeout, KindTimeout, "timed out after 200ms"},
		{"memory bomb", "membomb", nil, lim, ErrMemoryLimit, KindMemoryLimit, "memory limit of 4 MiB"},
		{"unreachable", "trap", nil, lim, ErrTrap, KindTrap, "unreachable"},
		{"stack overflow", "stackoverflow", nil, Limits{}, ErrTrap, KindTrap, "stack overflow"},
		{"oversized output", "bigoutput", nil, Limits{}, ErrOutputLimit, KindOutputLimit, "output limit of 6 MiB"},
		{"output out of bounds", "badoutput", nil, lim, ErrABIViolation, KindABIViolation, "outside the guest"},
		{"guest error", "guesterror", nil, lim, ErrGuestError, KindGuestError, "input rejected: want a u64"},
		{"non-zero exit", "exit3", nil, lim, ErrExit, KindExit, "status 3"},
		{"oversized input", "echo", make([]byte, 2<<10), Limits{MaxInputBytes: 1 << 10}, ErrInputLimit, KindInputLimit, "input limit of 1 KiB"},
		{"module over memory limit at start", "bigoutput", nil, Limits{MaxMemoryBytes: 1}, ErrMemoryLimit, KindMemoryLimit, "at start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, r, wat(t, tc.module), ModuleConfig{Limits: tc.lim, PoolSize: -1})
			for range 2 { // the same module fails the same way again
				_, err := m.Invoke(ctx, tc.input)
				require.Error(t, err)
				assert.ErrorIs(t, err, tc.want)
				var je *JobError
				require.ErrorAs(t, err, &je)
				assert.Equal(t, tc.kind, je.Kind)
				assert.Contains(t, err.Error(), tc.msg)
				assert.NotContains(t, err.Error(), "\n")
			}
			res, err := healthy.Invoke(ctx, []byte("still fine"))
			require.NoError(t, err, "the runtime must stay healthy")
			assert.Equal(t, "still fine", string(res.Output))
		})
	}
}

func TestModule_Invoke_GoGuestPanicsAndErrors(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	m := load(t, r, goJob(t, "jsontransform", examples.Reactor), ModuleConfig{})
	_, err := m.Invoke(ctx, []byte("{"))
	assert.ErrorIs(t, err, ErrGuestError)
	assert.ErrorContains(t, err, "decode order")
	res, err := m.Invoke(ctx, []byte(`{"items":[{"name":"x","price":1,"qty":3}]}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"count":1,"total":3,"names":["x"]}`, string(res.Output))

	cmd := load(t, r, goJob(t, "incredible-squaring", examples.Command), ModuleConfig{})
	_, err = cmd.Invoke(ctx, []byte("-1"))
	var je *JobError
	require.ErrorAs(t, err, &je)
	assert.Equal(t, KindExit, je.Kind)
	assert.Contains(t, je.Message, "want a u64")
}

func TestModule_Invoke_GoTimeoutAndMemoryLimit(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	m := load(t, r, goJob(t, "sha256", examples.Reactor), ModuleConfig{Limits: Limits{MaxMemoryBytes: 8 << 20}})
	_, err := m.Invoke(ctx, make([]byte, 6<<20))
	assert.ErrorIs(t, err, ErrMemoryLimit)
	_, err = m.Invoke(ctx, make([]byte, 1<<20), WithTimeout(time.Microsecond))
	assert.ErrorIs(t, err, ErrTimeout)
	res, err := m.Invoke(ctx, []byte("abc"))
	require.NoError(t, err)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", string(res.Output))
}

func TestModule_Invoke_CallerCancel(t *testing.T) {
	r := newRuntime(t, Config{})
	m := load(t, r, wat(t, "loop"), ModuleConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := m.Invoke(ctx, nil)
	assert.ErrorIs(t, err, ErrCanceled)
}

// A reused instance's deadline timer is reset for every call: calls that
// end right at their deadline either succeed or time out, an instance
// that was interrupted is never reused, and a late firing meant for one
// call never stops the next. An already-canceled caller's call never runs.
func TestModule_Invoke_DeadlineRacesOnReusedInstance(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	m := load(t, r, wat(t, "spin"), ModuleConfig{Reuse: true, PoolSize: 1})
	spin := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
	// Calibrate a spin that takes about 200 µs (the fastest of three runs,
	// so a slow first call does not end it early).
	n := uint32(1 << 12)
	for n < 1<<30 {
		fastest := time.Hour
		for range 3 {
			start := time.Now()
			_, err := m.Invoke(ctx, spin(n))
			require.NoError(t, err)
			fastest = min(fastest, time.Since(start))
		}
		if fastest > 200*time.Microsecond {
			break
		}
		n *= 2
	}
	ok, timedOut := 0, 0
	for i := range 300 {
		timeout := time.Duration(10+i%300) * time.Microsecond
		res, err := m.Invoke(ctx, spin(n), WithTimeout(timeout))
		switch {
		case err == nil:
			ok++
			assert.Equal(t, spin(n), res.Output)
		case errors.Is(err, ErrTimeout):
			timedOut++
		default:
			t.Fatalf("call %d: %v", i, err)
		}
		// The next call on the instance, with time to spare, succeeds.
		_, err = m.Invoke(ctx, []byte("ok")) // under four bytes: no spin
		require.NoError(t, err, "call %d's deadline leaked into the next call", i)
	}
	t.Logf("%d succeeded, %d timed out", ok, timedOut)
	// A call that cannot finish in time times out, and the instance's
	// next call still succeeds.
	_, err := m.Invoke(ctx, spin(1<<30), WithTimeout(time.Millisecond))
	assert.ErrorIs(t, err, ErrTimeout)
	_, err = m.Invoke(ctx, []byte("ok"))
	require.NoError(t, err)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.Invoke(canceled, spin(1<<30))
	assert.ErrorIs(t, err, ErrCanceled)
}

func TestModule_Deterministic(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	run := func(m *Module) []byte {
		res, err := m.Invoke(ctx, nil)
		require.NoError(t, err)
		require.Len(t, res.Output, 16)
		return res.Output
	}
	det := load(t, r, wat(t, "entropy"), ModuleConfig{})
	assert.True(t, det.Deterministic(), "on by default without network")
	assert.Equal(t, run(det), run(det))

	seeded := load(t, r, wat(t, "entropy"), ModuleConfig{Seed: 42})
	assert.NotEqual(t, run(det)[:8], run(seeded)[:8], "the seed changes the random stream")

	off := false
	live := load(t, r, wat(t, "entropy"), ModuleConfig{Deterministic: &off})
	assert.NotEqual(t, run(live), run(live))
}

func TestModule_Reuse(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	counts := func(m *Module) []byte {
		var got []byte
		for range 3 {
			res, err := m.Invoke(ctx, nil)
			require.NoError(t, err)
			got = append(got, res.Output...)
		}
		return got
	}
	fresh := load(t, r, wat(t, "calls"), ModuleConfig{})
	assert.Equal(t, []byte{1, 1, 1}, counts(fresh), "no memory carries over by default")
	reused := load(t, r, wat(t, "calls"), ModuleConfig{Reuse: true, PoolSize: 1})
	got := counts(reused)
	// The first call may land on an instance the pool created meanwhile;
	// from then on the warm instance is kept.
	assert.Equal(t, got[1]+1, got[2], "a reused instance keeps its memory: %v", got)
}

func TestModule_ConcurrentInvocations(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	m := load(t, r, goJob(t, "incredible-squaring", examples.Reactor), ModuleConfig{PoolSize: 4})
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			res, err := m.Invoke(ctx, []byte(fmt.Sprint(i)))
			if assert.NoError(t, err) {
				assert.Equal(t, fmt.Sprint(i*i), string(res.Output))
			}
		})
	}
	wg.Wait()
}

func TestModule_Close(t *testing.T) {
	r := newRuntime(t, Config{})
	m := load(t, r, wat(t, "echo"), ModuleConfig{})
	require.NoError(t, m.Close(context.Background()))
	require.NoError(t, m.Close(context.Background()))
	_, err := m.Invoke(context.Background(), nil)
	assert.ErrorIs(t, err, ErrClosed)
}

func TestRuntime_CompilationCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := goJob(t, "incredible-squaring", examples.Reactor)
	for i := range 2 {
		r, err := New(ctx, Config{CacheDir: dir})
		require.NoError(t, err)
		m, err := r.Load(ctx, wasm, ModuleConfig{PoolSize: -1})
		require.NoError(t, err)
		res, err := m.Invoke(ctx, []byte("4"))
		require.NoError(t, err)
		assert.Equal(t, "16", string(res.Output), "run %d", i)
		require.NoError(t, r.Close(ctx))
	}
	var files int
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			files++
		}
		return nil
	})
	assert.Positive(t, files, "compiled code is on disk")
}

func TestRuntime_Interpreter(t *testing.T) {
	r := newRuntime(t, Config{Engine: EngineWazeroInterpreter})
	assert.Equal(t, "wazero-interpreter", r.EngineName())
	m := load(t, r, wat(t, "loop"), ModuleConfig{Limits: Limits{Timeout: 50 * time.Millisecond}})
	_, err := m.Invoke(context.Background(), nil)
	assert.ErrorIs(t, err, ErrTimeout)
	_, err = New(context.Background(), Config{Engine: "v8"})
	assert.ErrorContains(t, err, `unknown engine "v8"`)
}

func TestLimits_Validate(t *testing.T) {
	assert.NoError(t, DefaultLimits().Validate())
	assert.NoError(t, Limits{}.Validate())
	for _, l := range []Limits{
		{Timeout: -1},
		{MaxMemoryBytes: 5 << 30},
		{MaxInputBytes: -1},
		{MaxOutputBytes: 2 << 30},
	} {
		err := l.Validate()
		assert.ErrorIs(t, err, ErrInvalidLimits, "%+v", l)
	}
	d := DefaultLimits()
	assert.Equal(t, uint64(128<<20), d.MaxMemoryBytes)
	assert.Equal(t, 10*time.Second, d.Timeout)
}

func TestAllowList(t *testing.T) {
	a, err := parseAllowList([]string{"api.example.com", "127.0.0.1:8080", "*.svc.local"})
	require.NoError(t, err)
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://api.example.com/x", true},
		{"http://API.example.com:9999/x", true},
		{"https://evil.com/api.example.com", false},
		{"https://api.example.com.evil.com/", false},
		{"http://127.0.0.1:8080/", true},
		{"http://127.0.0.1:8081/", false},
		{"http://a.b.svc.local/", true},
		{"http://svc.local/", false},
	} {
		u, _ := url.Parse(tc.url)
		assert.Equal(t, tc.ok, a.allows(u), tc.url)
	}
	for _, bad := range []string{"", "http://x/", "a*b.com", "*."} {
		_, err := parseAllowList([]string{bad})
		assert.Error(t, err, bad)
	}
}

func TestDecodeHTTPRequest(t *testing.T) {
	enc := func(parts ...string) []byte {
		var b []byte
		b = appendStr(b, parts[0])
		b = appendStr(b, parts[1])
		b = append(b, 0, 0, 0, 0)
		return appendStr(b, parts[2])
	}
	req, err := decodeHTTPRequest(enc("POST", "http://x/", "body"))
	require.NoError(t, err)
	assert.Equal(t, "POST", req.method)
	assert.Equal(t, "body", string(req.body))
	_, err = decodeHTTPRequest(enc("CONNECT", "http://x/", ""))
	assert.ErrorContains(t, err, "not allowed")
	_, err = decodeHTTPRequest(append(enc("GET", "http://x/", ""), 1))
	assert.ErrorContains(t, err, "trailing")
	_, err = decodeHTTPRequest([]byte{255, 255, 255, 255})
	assert.Error(t, err)
}

func FuzzDecodeHTTPRequest(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 'G', 'E', 'T', 8, 0, 0, 0, 'h', 't', 't', 'p', ':', '/', '/', 'x', 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeHTTPRequest(b)
		if err == nil && req == nil {
			t.Fatal("nil request without error")
		}
	})
}

func TestJobError_Is(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &JobError{Kind: KindTimeout, Message: "timed out"})
	assert.ErrorIs(t, err, ErrTimeout)
	assert.False(t, errors.Is(err, ErrTrap))
	assert.True(t, strings.HasPrefix((&JobError{Job: "j", Message: "m"}).Error(), "job j: m"))
}

func TestPool_HidesInstantiation(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	m := load(t, r, goJob(t, "incredible-squaring", examples.Reactor), ModuleConfig{PoolSize: 2})
	waitPoolReady(t, m)
	res, err := m.Invoke(ctx, []byte("7"))
	require.NoError(t, err)
	assert.Equal(t, "49", string(res.Output))
	assert.Zero(t, res.Instantiate, "a ready pool means no instantiation on the hot path")

	none := load(t, r, goJob(t, "incredible-squaring", examples.Reactor), ModuleConfig{PoolSize: -1})
	res, err = none.Invoke(ctx, []byte("7"))
	require.NoError(t, err)
	assert.Positive(t, res.Instantiate, "without a pool the call instantiates")
}

func TestModule_Warm(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, Config{})
	m := load(t, r, wat(t, "echo"), ModuleConfig{PoolSize: 3})
	n, err := m.Warm(ctx, 10)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "at most the pool's size")
	n, err = m.Warm(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "already warm: nothing to do, the ready count reported")

	none := load(t, r, wat(t, "echo"), ModuleConfig{PoolSize: -1})
	n, err = none.Warm(ctx, 4)
	require.NoError(t, err)
	assert.Zero(t, n, "no pool, nothing kept warm")

	require.NoError(t, m.Close(ctx))
	_, err = m.Warm(ctx, 1)
	assert.ErrorIs(t, err, ErrClosed)
}
