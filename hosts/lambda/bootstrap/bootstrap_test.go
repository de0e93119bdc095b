package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/hosts/hostpkg"
	"github.com/ferryrun/ferry/hosts/lambda/event"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/state"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

// writePackage lays out a function's code directory as Lambda unpacks it.
func writePackage(t *testing.T, wasm []byte, m hostpkg.Manifest) string {
	t.Helper()
	dir := t.TempDir()
	m.Schema = hostpkg.Schema
	m.Digest = modstore.Digest(wasm)
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, hostpkg.ManifestFile), raw, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, hostpkg.ModuleFile), wasm, 0o644))
	return dir
}

func wat(t *testing.T, name string) []byte {
	t.Helper()
	b, err := examples.WAT(name)
	require.NoError(t, err)
	return b
}

func load(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := Load(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func ferryCall(t *testing.T, c event.Call) []byte {
	t.Helper()
	c.V = event.Version
	b, err := json.Marshal(event.Request{Ferry: &c})
	require.NoError(t, err)
	return b
}

// errType returns the errorType aws-lambda-go would post for err.
func errType(t *testing.T, err error) event.ErrorType {
	t.Helper()
	require.Error(t, err)
	var ie messages.InvokeResponse_Error
	require.ErrorAs(t, err, &ie)
	return event.ErrorType(ie.Type)
}

func TestHandler_Payloads(t *testing.T) {
	wasm := wat(t, "echo")
	dir := writePackage(t, wasm, hostpkg.Manifest{Job: "echo", Pure: true})
	h := load(t, Config{Dir: dir, Engine: EngineInterpreter})
	ctx := context.Background()

	t.Run("ferry", func(t *testing.T) {
		out, err := h.Invoke(ctx, ferryCall(t, event.Call{Input: []byte("hello"), Digest: modstore.Digest(wasm), InvocationID: "inv-1"}))
		require.NoError(t, err)
		var r event.Response
		require.NoError(t, json.Unmarshal(out, &r))
		assert.Equal(t, "hello", string(r.Output))
		assert.Equal(t, "inv-1", r.InvocationID)
		assert.Equal(t, event.EngineInterpreter, r.Engine)
		assert.Positive(t, r.MemoryUsedBytes)
	})
	t.Run("tangle", func(t *testing.T) {
		out, err := h.Invoke(ctx, []byte(`{"job_id":7,"args":[104,105]}`))
		require.NoError(t, err)
		assert.JSONEq(t, `{"job_id":7,"result":[104,105]}`, string(out))
	})
	for _, warm := range []string{`{}`, " {} \n", `{"ferry":{"v":1,"warm":true}}`} {
		t.Run("warm "+strconv.Quote(warm), func(t *testing.T) {
			out, err := h.Invoke(ctx, []byte(warm))
			require.NoError(t, err)
			var w event.Warmed
			require.NoError(t, json.Unmarshal(out, &w))
			assert.True(t, w.Warm)
			assert.Equal(t, "echo", w.Job)
			assert.Equal(t, modstore.Digest(wasm), w.Digest)
		})
	}
	t.Run("another module", func(t *testing.T) {
		_, err := h.Invoke(ctx, ferryCall(t, event.Call{Input: []byte("x"), Digest: modstore.Digest([]byte("other"))}))
		assert.Equal(t, event.TypeNotDeployed, errType(t, err))
		_, err = h.Invoke(ctx, ferryCall(t, event.Call{Warm: true, Digest: modstore.Digest([]byte("other"))}))
		assert.Equal(t, event.TypeNotDeployed, errType(t, err), "nor is a stale deployment warmed")
	})
	for _, bad := range []string{``, `[]`, `"x"`, `{"ferry":{"v":2}}`, `{"job_id":1,"args":"aGk="}`, `{"job_id":1,"args":[256]}`,
		`{"nope":1}`, `{"ferry":{"v":1},"job_id":1}`, `{"job_id":1} {}`} {
		t.Run("bad "+strconv.Quote(bad), func(t *testing.T) {
			_, err := h.Invoke(ctx, []byte(bad))
			assert.Equal(t, event.TypeBadRequest, errType(t, err))
		})
	}
	// After every refusal the handler still serves.
	out, err := h.Invoke(ctx, []byte(`{"job_id":1,"args":[1]}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"job_id":1,"result":[1]}`, string(out))
}

func TestHandler_JobErrors(t *testing.T) {
	for _, tc := range []struct {
		module string
		limits hostpkg.Limits
		in     string
		want   event.ErrorType
	}{
		{"trap", hostpkg.Limits{}, "", event.TypeTrap},
		{"exit3", hostpkg.Limits{}, "", event.TypeExit},
		{"guesterror", hostpkg.Limits{}, "x", event.TypeGuestError},
		{"loop", hostpkg.Limits{TimeoutMs: 100}, "", event.TypeTimeout},
		{"membomb", hostpkg.Limits{MemoryMB: 16}, "", event.TypeMemoryLimit},
		{"bigoutput", hostpkg.Limits{}, "", event.TypeOutputTooLarge},
		{"echo", hostpkg.Limits{MaxInputBytes: 4}, "too long", event.TypeInputTooLarge},
	} {
		t.Run(tc.module, func(t *testing.T) {
			dir := writePackage(t, wat(t, tc.module), hostpkg.Manifest{Job: tc.module, Limits: tc.limits})
			h := load(t, Config{Dir: dir, Engine: EngineInterpreter})
			for range 2 { // and again: the handler survives the failure
				_, err := h.Invoke(context.Background(), ferryCall(t, event.Call{Input: []byte(tc.in)}))
				assert.Equal(t, tc.want, errType(t, err))
				assert.NotEqual(t, event.ClassHost, event.ClassOf(string(tc.want)))
			}
		})
	}
}

func TestLoad_BadPackage(t *testing.T) {
	good := wat(t, "echo")
	for _, tc := range []struct {
		name  string
		setup func(dir string)
	}{
		{"no manifest", func(dir string) { os.Remove(filepath.Join(dir, hostpkg.ManifestFile)) }},
		{"no module", func(dir string) { os.Remove(filepath.Join(dir, hostpkg.ModuleFile)) }},
		{"garbled manifest", func(dir string) { os.WriteFile(filepath.Join(dir, hostpkg.ManifestFile), []byte("{"), 0o644) }},
		{"module swapped", func(dir string) { os.WriteFile(filepath.Join(dir, hostpkg.ModuleFile), wat(t, "trap"), 0o644) }},
		{"not wasm", func(dir string) {
			raw, _ := json.Marshal(hostpkg.Manifest{Schema: 1, Job: "x", Digest: modstore.Digest([]byte("junk"))})
			os.WriteFile(filepath.Join(dir, hostpkg.ManifestFile), raw, 0o644)
			os.WriteFile(filepath.Join(dir, hostpkg.ModuleFile), []byte("junk"), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePackage(t, good, hostpkg.Manifest{Job: "echo"})
			tc.setup(dir)
			_, err := Load(context.Background(), Config{Dir: dir, Engine: EngineInterpreter})
			assert.Error(t, err)
		})
	}
	_, err := Load(context.Background(), Config{Dir: t.TempDir(), Engine: "jit"})
	assert.ErrorContains(t, err, "engine")
}

// Tiered: the interpreter answers at once; once the background
// compilation is done, calls run compiled, and a restarted process finds
// the compiled code in the cache.
func TestHandler_Tiered(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a Go guest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wasm, err := examples.BuildGo(ctx, "incredible-squaring", examples.Reactor)
	require.NoError(t, err)
	dir := writePackage(t, wasm, hostpkg.Manifest{Job: "square", Pure: true})
	cache := t.TempDir()

	h := load(t, Config{Dir: dir, CacheDir: cache})
	assert.Equal(t, EngineInterpreter, h.Engine(), "a cold process starts on the interpreter")
	// Calls keep working while the compiler runs, and during the switch.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			out, err := h.Invoke(ctx, ferryCall(t, event.Call{Input: []byte(strconv.Itoa(i))}))
			var r event.Response
			if err == nil {
				err = json.Unmarshal(out, &r)
			}
			if err == nil && string(r.Output) != strconv.Itoa(i*i) {
				err = fmt.Errorf("square(%d) = %q", i, r.Output)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	require.NoError(t, h.WaitCompiled(ctx))
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	assert.Equal(t, EngineCompiler, h.Engine())
	out, err := h.Invoke(ctx, ferryCall(t, event.Call{Input: []byte("12345")}))
	require.NoError(t, err)
	var r event.Response
	require.NoError(t, json.Unmarshal(out, &r))
	assert.Equal(t, "152399025", string(r.Output))
	assert.Equal(t, event.EngineCompiler, r.Engine)
	require.NoError(t, h.Close(ctx))

	again := load(t, Config{Dir: dir, CacheDir: cache})
	assert.Equal(t, EngineCompiler, again.Engine(), "a restarted process loads compiled code from the cache")
}

// A stateful job commits to the configured store, and an idempotency key
// makes a second delivery return the first output without running.
func TestHandler_State(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a Go guest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	wasm, err := examples.BuildGo(ctx, "counter", examples.Reactor)
	require.NoError(t, err)
	dir := writePackage(t, wasm, hostpkg.Manifest{Job: "counter"})
	st := state.NewMemory()
	h := load(t, Config{Dir: dir, Engine: EngineInterpreter, State: st, StateNamespace: "counters"})

	call := func(key string) string {
		out, err := h.Invoke(ctx, ferryCall(t, event.Call{Input: []byte("1"), IdempotencyKey: key}))
		require.NoError(t, err)
		var r event.Response
		require.NoError(t, json.Unmarshal(out, &r))
		return string(r.Output)
	}
	first := call("k1")
	assert.Equal(t, first, call("k1"), "a second delivery of k1 replays")
	assert.NotEqual(t, first, call("k2"))
	_, found, err := st.Get(ctx, "counters", "counter")
	require.NoError(t, err)
	assert.True(t, found, "the state lives in the namespace the host set")

	// Without a store, a stateful job is refused at init (the host's
	// problem), not failed at every call as if it were the job's.
	_, err = Load(ctx, Config{Dir: dir, Engine: EngineInterpreter})
	assert.ErrorContains(t, err, "no state store")
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"LAMBDA_TASK_ROOT": "/var/task", "TMPDIR": "/tmp/env1", EnvEngine: "compiler", EnvStateNamespace: "ns"}
	c := ConfigFromEnv(func(k string) string { return env[k] })
	assert.Equal(t, Config{Dir: "/var/task", Engine: "compiler", CacheDir: "/tmp/env1/ferry-cache", StateNamespace: "ns"}, c)
	c = ConfigFromEnv(func(string) string { return "" })
	assert.Equal(t, "/tmp/ferry-cache", c.CacheDir)
}
