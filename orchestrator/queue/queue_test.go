package queue_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/ferryrun/ferry/orchestrator/queue"
)

// clock is an injectable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newQueue(t testing.TB, db *bolt.DB, cfg queue.Config) *queue.Queue {
	t.Helper()
	q, err := queue.Open(db, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

func tempQueue(t testing.TB, cfg queue.Config) (*queue.Queue, *bolt.DB) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "ferry.db"))
	return newQueue(t, db, cfg), db
}

func echo(_ context.Context, inv *queue.Invocation, input []byte) queue.Outcome {
	return queue.Outcome{Output: append([]byte("out:"), input...), RanOn: "local", DecisionID: "d-" + inv.ID}
}

func submit(t *testing.T, q *queue.Queue, job, input, key string) *queue.Invocation {
	t.Helper()
	inv, created, err := q.Submit(context.Background(), job, []byte(input), key)
	require.NoError(t, err)
	require.True(t, created)
	return inv
}

// waitFinished polls until id is succeeded or failed.
func waitFinished(t *testing.T, q *queue.Queue, id string) *queue.Invocation {
	t.Helper()
	var inv *queue.Invocation
	require.Eventually(t, func() bool {
		got, err := q.Get(id)
		if err != nil {
			return false
		}
		inv = got
		return got.Status.Finished()
	}, 10*time.Second, time.Millisecond, "invocation %s did not finish", id)
	return inv
}

// waitIdle waits until Depth is zero: it follows the database closely,
// not exactly.
func waitIdle(t *testing.T, q *queue.Queue) {
	t.Helper()
	require.Eventually(t, func() bool {
		queued, running := q.Depth()
		return queued == 0 && running == 0
	}, 30*time.Second, time.Millisecond, "the queue did not empty")
}

// keys counts the entries in one of the queue's buckets.
func keys(t *testing.T, db *bolt.DB, bucket string) int {
	t.Helper()
	n := 0
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(_, _ []byte) error { n++; return nil })
	}))
	return n
}

func TestQueue_SubmitGet_RoundTrip(t *testing.T) {
	clk := newClock()
	q, db := tempQueue(t, queue.Config{Now: clk.Now, TTL: time.Hour})

	inv := submit(t, q, "echo", "hi", "")
	assert.Len(t, inv.ID, 32)
	assert.Equal(t, queue.StatusQueued, inv.Status)
	assert.Equal(t, clk.Now(), inv.SubmittedAt)
	got, err := q.Get(inv.ID)
	require.NoError(t, err)
	assert.Equal(t, inv, got)
	queued, running := q.Depth()
	assert.Equal(t, [2]int{1, 0}, [2]int{queued, running})
	assert.Equal(t, 1, keys(t, db, "queue/inputs"))

	require.NoError(t, q.Start(context.Background(), echo, nil))
	done := waitFinished(t, q, inv.ID)
	assert.Equal(t, queue.StatusSucceeded, done.Status)
	assert.Equal(t, "out:hi", string(done.Output))
	assert.Equal(t, "local", done.RanOn)
	assert.Equal(t, "d-"+inv.ID, done.DecisionID)
	assert.Equal(t, 1, done.Attempts)
	assert.False(t, done.Recovered)
	require.NotNil(t, done.StartedAt)
	require.NotNil(t, done.FinishedAt)
	require.NotNil(t, done.ExpiresAt)
	assert.Equal(t, done.FinishedAt.Add(time.Hour), *done.ExpiresAt)
	waitIdle(t, q)
	assert.Zero(t, keys(t, db, "queue/inputs"), "a finished invocation's input is dropped")

	b, err := json.Marshal(done)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "succeeded", m["status"])
	assert.Equal(t, "b3V0Omhp", m["output"], "output is base64")
	assert.NotContains(t, m, "input")
	assert.NotContains(t, m, "error")

	_, err = q.Get("nope")
	assert.ErrorIs(t, err, queue.ErrNotFound)
	_, err = q.Get("")
	assert.ErrorIs(t, err, queue.ErrNotFound)
}

func TestQueue_Start_FIFOWithOneWorker(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{Workers: 1})
	var ids []string
	for i := range 300 { // past 256, where a naive id encoding would stop sorting
		ids = append(ids, submit(t, q, "echo", fmt.Sprint(i), "").ID)
	}
	assert.True(t, slices.IsSorted(ids), "ids sort in submission order")

	var mu sync.Mutex
	var ran []string
	require.NoError(t, q.Start(context.Background(), func(_ context.Context, inv *queue.Invocation, _ []byte) queue.Outcome {
		mu.Lock()
		ran = append(ran, inv.ID)
		mu.Unlock()
		return queue.Outcome{}
	}, nil))
	waitFinished(t, q, ids[len(ids)-1])
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, ids, ran)
}

func TestQueue_Submit_Idempotency(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{})
	ctx := context.Background()
	first, created, err := q.Submit(ctx, "echo", []byte("a"), "k1")
	require.NoError(t, err)
	require.True(t, created)

	tests := []struct {
		name        string
		job, input  string
		key         string
		wantErr     error
		wantFirst   bool // the answer is first, not created
		wantCreated bool
	}{
		{name: "same key and input", job: "echo", input: "a", key: "k1", wantFirst: true},
		{name: "same key, other input", job: "echo", input: "b", key: "k1", wantErr: queue.ErrIdempotencyMismatch},
		{name: "same key, other job", job: "other", input: "b", key: "k1", wantCreated: true},
		{name: "other key", job: "echo", input: "a", key: "k2", wantCreated: true},
		{name: "no key", job: "echo", input: "a", wantCreated: true},
		{name: "no key again", job: "echo", input: "a", wantCreated: true},
		{name: "job and key split differently", job: "ech", input: "a", key: "ok1", wantCreated: true},
	}
	seen := map[string]bool{first.ID: true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, created, err := q.Submit(ctx, tt.job, []byte(tt.input), tt.key)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, inv)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantCreated, created)
			if tt.wantFirst {
				assert.Equal(t, first.ID, inv.ID)
				return
			}
			assert.False(t, seen[inv.ID], "a new invocation has a new id")
			seen[inv.ID] = true
		})
	}

	// Whatever its status: a finished invocation is still the answer.
	require.NoError(t, q.Start(ctx, echo, nil))
	waitFinished(t, q, first.ID)
	inv, created, err := q.Submit(ctx, "echo", []byte("a"), "k1")
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.ID, inv.ID)
	assert.Equal(t, queue.StatusSucceeded, inv.Status)
	assert.Equal(t, "out:a", string(inv.Output))
}

func TestQueue_Submit_Rejects(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{MaxInputBytes: 4})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		job     string
		input   string
		key     string
		wantErr error
	}{
		{name: "at the input limit", ctx: context.Background(), job: "echo", input: "1234"},
		{name: "empty input", ctx: context.Background(), job: "echo"},
		{name: "over the input limit", ctx: context.Background(), job: "echo", input: "12345", wantErr: queue.ErrTooLarge},
		{name: "no job", ctx: context.Background(), input: "1", wantErr: queue.ErrInvalid},
		{name: "key too long", ctx: context.Background(), job: "echo", key: strings.Repeat("k", 257), wantErr: queue.ErrInvalid},
		{name: "cancelled", ctx: cancelled, job: "echo", wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := q.Submit(tt.ctx, tt.job, []byte(tt.input), tt.key)
			if tt.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
	queued, _ := q.Depth()
	assert.Equal(t, 2, queued, "only the accepted submissions count")
}

func TestQueue_Submit_Full(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{MaxPending: 2})
	ctx := context.Background()
	a, _, err := q.Submit(ctx, "echo", []byte("a"), "a")
	require.NoError(t, err)
	b := submit(t, q, "echo", "b", "")

	_, _, err = q.Submit(ctx, "echo", []byte("c"), "")
	assert.ErrorIs(t, err, queue.ErrFull)
	_, _, err = q.Submit(ctx, "echo", []byte("c"), "c")
	assert.ErrorIs(t, err, queue.ErrFull)
	again, created, err := q.Submit(ctx, "echo", []byte("a"), "a")
	require.NoError(t, err, "a retried submission is answered even when full")
	assert.False(t, created)
	assert.Equal(t, a.ID, again.ID)
	queued, running := q.Depth()
	assert.Equal(t, 2, queued+running)

	require.NoError(t, q.Start(ctx, echo, nil))
	waitFinished(t, q, a.ID)
	waitFinished(t, q, b.ID)
	waitIdle(t, q)
	c, created, err := q.Submit(ctx, "echo", []byte("c"), "c")
	require.NoError(t, err, "room again once they ran")
	assert.True(t, created)
	waitFinished(t, q, c.ID)
}

func TestQueue_TTL(t *testing.T) {
	t.Run("janitor deletes and the key is free again", func(t *testing.T) {
		clk := newClock()
		q, db := tempQueue(t, queue.Config{Now: clk.Now, TTL: time.Hour, SweepInterval: 5 * time.Millisecond})
		require.NoError(t, q.Start(context.Background(), echo, nil))
		first := submit(t, q, "echo", "a", "k")
		waitFinished(t, q, first.ID)

		clk.Add(59 * time.Minute)
		_, err := q.Get(first.ID)
		require.NoError(t, err, "not expired yet")
		time.Sleep(20 * time.Millisecond) // a few sweeps, which must keep it
		assert.Equal(t, 1, keys(t, db, "queue/invocations"))

		clk.Add(time.Minute)
		_, err = q.Get(first.ID)
		assert.ErrorIs(t, err, queue.ErrNotFound)
		for _, b := range []string{"queue/invocations", "queue/idempotency", "queue/expiry"} {
			require.Eventually(t, func() bool { return keys(t, db, b) == 0 }, 10*time.Second, time.Millisecond, "%s is swept", b)
		}

		second, created, err := q.Submit(context.Background(), "echo", []byte("other input"), "k")
		require.NoError(t, err)
		assert.True(t, created)
		assert.NotEqual(t, first.ID, second.ID)
	})
	t.Run("expired key is reused before the janitor runs", func(t *testing.T) {
		clk := newClock()
		q, db := tempQueue(t, queue.Config{Now: clk.Now, TTL: time.Hour, SweepInterval: time.Hour})
		require.NoError(t, q.Start(context.Background(), echo, nil))
		first := submit(t, q, "echo", "a", "k")
		waitFinished(t, q, first.ID)
		clk.Add(2 * time.Hour)

		second, created, err := q.Submit(context.Background(), "echo", []byte("b"), "k")
		require.NoError(t, err, "an expired key's input does not matter")
		assert.True(t, created)
		assert.NotEqual(t, first.ID, second.ID)
		waitFinished(t, q, second.ID)
		assert.Equal(t, 1, keys(t, db, "queue/invocations"), "the expired invocation went with its key")
		assert.Equal(t, 1, keys(t, db, "queue/expiry"))
	})
}

// crashIDs are the invocations a crashed orchestrator left: two running
// (one of a job safe to run again), one queued.
type crashIDs struct{ pure, stateful, later string }

// submitAndBlock submits the three with two workers whose runner never
// returns until its ctx ends, and waits until two are running.
func submitAndBlock(t *testing.T, q *queue.Queue) crashIDs {
	t.Helper()
	entered := make(chan string, 3)
	require.NoError(t, q.Start(context.Background(), func(ctx context.Context, inv *queue.Invocation, _ []byte) queue.Outcome {
		entered <- inv.Job
		<-ctx.Done()
		return queue.Outcome{Err: ctx.Err(), ErrorKind: "timeout"}
	}, nil))
	ids := crashIDs{
		pure:     submit(t, q, "pure", "1", "").ID,
		stateful: submit(t, q, "stateful", "2", "key").ID,
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the runner was not called")
		}
	}
	ids.later = submit(t, q, "later", "3", "").ID
	return ids
}

// checkRecovered reopens the queue in path and checks what Start does
// with what the crash left.
func checkRecovered(t *testing.T, path string, ids crashIDs) {
	t.Helper()
	db := openDB(t, path)
	q := newQueue(t, db, queue.Config{Workers: 2})
	queued, running := q.Depth()
	assert.Equal(t, [2]int{1, 2}, [2]int{queued, running}, "counted at Open")

	var mu sync.Mutex
	calls := map[string]int{}
	require.NoError(t, q.Start(context.Background(), func(ctx context.Context, inv *queue.Invocation, in []byte) queue.Outcome {
		mu.Lock()
		calls[inv.Job]++
		mu.Unlock()
		return echo(ctx, inv, in)
	}, func(job string) bool { return job == "pure" }))

	pure := waitFinished(t, q, ids.pure)
	assert.Equal(t, queue.StatusSucceeded, pure.Status)
	assert.True(t, pure.Recovered)
	assert.Equal(t, 2, pure.Attempts)
	assert.Equal(t, "out:1", string(pure.Output), "the input survived")

	stateful := waitFinished(t, q, ids.stateful)
	assert.Equal(t, queue.StatusFailed, stateful.Status)
	assert.Equal(t, queue.KindInterrupted, stateful.ErrorKind)
	assert.Contains(t, stateful.Error, "not safe to run twice")
	assert.Equal(t, 1, stateful.Attempts)
	assert.NotNil(t, stateful.ExpiresAt)

	later := waitFinished(t, q, ids.later)
	assert.Equal(t, queue.StatusSucceeded, later.Status)
	assert.False(t, later.Recovered)
	assert.Equal(t, 1, later.Attempts)

	mu.Lock()
	assert.Equal(t, map[string]int{"pure": 1, "later": 1}, calls)
	mu.Unlock()
	waitIdle(t, q)

	again, created, err := q.Submit(context.Background(), "stateful", []byte("2"), "key")
	require.NoError(t, err)
	assert.False(t, created, "a retry with the key gets the interrupted invocation, not a second run")
	assert.Equal(t, ids.stateful, again.ID)
}

func TestQueue_Start_RecoversAfterCloseGivesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	db := openDB(t, path)
	q, err := queue.Open(db, queue.Config{Workers: 2})
	require.NoError(t, err)
	ids := submitAndBlock(t, q)

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, q.Close(expired), context.Canceled)
	inv, err := q.Get(ids.pure)
	require.NoError(t, err)
	assert.Equal(t, queue.StatusRunning, inv.Status, "left running for the next Start")
	require.NoError(t, db.Close())

	checkRecovered(t, path, ids)
}

// TestQueue_CrashHelper is the process TestQueue_SurvivesKill kills.
func TestQueue_CrashHelper(t *testing.T) {
	path := os.Getenv("FERRY_QUEUE_CRASH_DB")
	if path == "" {
		t.Skip("the process TestQueue_SurvivesKill kills")
	}
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	q, err := queue.Open(db, queue.Config{Workers: 2})
	require.NoError(t, err)
	ids := submitAndBlock(t, q)
	fmt.Printf("ids %s %s %s\n", ids.pure, ids.stateful, ids.later)
	select {} // until killed
}

func TestQueue_SurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestQueue_CrashHelper$")
	cmd.Env = append(os.Environ(), "FERRY_QUEUE_CRASH_DB="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var ids crashIDs
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if _, err := fmt.Sscanf(lines.Text(), "ids %s %s %s", &ids.pure, &ids.stateful, &ids.later); err == nil {
			break
		}
	}
	require.NotEmpty(t, ids.later, "the helper did not report its invocations")
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no Close, no deferred anything
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.False(t, exit.Success())

	checkRecovered(t, path, ids)
}

func TestQueue_Start_RunnerPanics(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{Workers: 1})
	require.NoError(t, q.Start(context.Background(), func(ctx context.Context, inv *queue.Invocation, in []byte) queue.Outcome {
		if string(in) == "boom" {
			panic("boom")
		}
		return echo(ctx, inv, in)
	}, nil))
	boom := submit(t, q, "echo", "boom", "")
	ok := submit(t, q, "echo", "ok", "")

	got := waitFinished(t, q, boom.ID)
	assert.Equal(t, queue.StatusFailed, got.Status)
	assert.Equal(t, queue.KindPanic, got.ErrorKind)
	assert.Contains(t, got.Error, "boom")
	got = waitFinished(t, q, ok.ID)
	assert.Equal(t, queue.StatusSucceeded, got.Status, "the worker survived")
	waitIdle(t, q)
}

func TestQueue_Start_RecordsRunnerError(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{})
	require.NoError(t, q.Start(context.Background(), func(context.Context, *queue.Invocation, []byte) queue.Outcome {
		return queue.Outcome{Err: errors.New("trap: unreachable"), ErrorKind: "trap", RanOn: "custom/h"}
	}, nil))
	got := waitFinished(t, q, submit(t, q, "echo", "x", "").ID)
	assert.Equal(t, queue.StatusFailed, got.Status)
	assert.Equal(t, "trap: unreachable", got.Error)
	assert.Equal(t, "trap", got.ErrorKind)
	assert.Equal(t, "custom/h", got.RanOn)
}

func TestQueue_Close_WaitsForRunning(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{})
	release := make(chan struct{})
	entered := make(chan struct{})
	require.NoError(t, q.Start(context.Background(), func(ctx context.Context, inv *queue.Invocation, in []byte) queue.Outcome {
		close(entered)
		<-release
		return echo(ctx, inv, in)
	}, nil))
	inv := submit(t, q, "echo", "x", "")
	<-entered

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- q.Close(ctx)
	}()
	select {
	case err := <-closed:
		t.Fatalf("Close returned while an invocation ran: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-closed)

	got, err := q.Get(inv.ID)
	require.NoError(t, err)
	assert.Equal(t, queue.StatusSucceeded, got.Status, "the run finished and was recorded")
	_, _, err = q.Submit(context.Background(), "echo", nil, "")
	assert.ErrorIs(t, err, queue.ErrClosed)
	assert.ErrorIs(t, q.Start(context.Background(), echo, nil), queue.ErrClosed)
	assert.NoError(t, q.Close(context.Background()), "closing twice")
}

func TestQueue_Close_CancelsRunnersWhenItGivesUp(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{})
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	require.NoError(t, q.Start(context.Background(), func(ctx context.Context, _ *queue.Invocation, _ []byte) queue.Outcome {
		close(entered)
		<-ctx.Done()
		close(cancelled)
		return queue.Outcome{Err: ctx.Err()}
	}, nil))
	inv := submit(t, q, "echo", "x", "")
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, q.Close(ctx), context.DeadlineExceeded)
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the runner's ctx was not cancelled")
	}
	got, err := q.Get(inv.ID)
	require.NoError(t, err)
	assert.Equal(t, queue.StatusRunning, got.Status, "a cancelled run is not recorded as a failure")
}

func TestQueue_ConcurrentSubmitsRunOnce(t *testing.T) {
	q, _ := tempQueue(t, queue.Config{})
	var mu sync.Mutex
	calls := map[string]int{}
	require.NoError(t, q.Start(context.Background(), func(ctx context.Context, inv *queue.Invocation, in []byte) queue.Outcome {
		mu.Lock()
		calls[inv.ID]++
		mu.Unlock()
		return echo(ctx, inv, in)
	}, nil))

	const goroutines, each, shared = 16, 1000 / 16, 10
	var wg sync.WaitGroup
	var idsMu sync.Mutex
	created := map[string]bool{}
	sharedIDs := map[string]map[string]bool{} // key → ids answered
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				inv, ok, err := q.Submit(context.Background(), "echo", fmt.Appendf(nil, "%d-%d", g, i), "")
				if !assert.NoError(t, err) {
					return
				}
				assert.True(t, ok)
				idsMu.Lock()
				created[inv.ID] = true
				idsMu.Unlock()
			}
			// Every goroutine also retries the same keys: one run each.
			for k := range shared {
				key := fmt.Sprint("shared-", k)
				inv, ok, err := q.Submit(context.Background(), "echo", []byte(key), key)
				if !assert.NoError(t, err) {
					return
				}
				idsMu.Lock()
				if ok {
					created[inv.ID] = true
				}
				if sharedIDs[key] == nil {
					sharedIDs[key] = map[string]bool{}
				}
				sharedIDs[key][inv.ID] = true
				idsMu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, created, goroutines*each+shared)
	for key, ids := range sharedIDs {
		assert.Len(t, ids, 1, "key %s answered with one invocation", key)
	}
	waitIdle(t, q)

	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, calls, len(created))
	for id := range created {
		assert.Equal(t, 1, calls[id], "invocation %s ran once", id)
		inv, err := q.Get(id)
		require.NoError(t, err)
		assert.Equal(t, queue.StatusSucceeded, inv.Status)
	}
}

func TestQueue_Close_WithoutStart(t *testing.T) {
	q, db := tempQueue(t, queue.Config{})
	inv := submit(t, q, "echo", "x", "")
	require.NoError(t, q.Close(context.Background()))
	_, _, err := q.Submit(context.Background(), "echo", nil, "")
	assert.ErrorIs(t, err, queue.ErrClosed)
	got, err := q.Get(inv.ID)
	require.NoError(t, err, "Get reads while the caller keeps db open")
	assert.Equal(t, queue.StatusQueued, got.Status)
	require.NoError(t, db.Close(), "nothing holds the database")
}

func TestOpen_RejectsNegativeConfig(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "ferry.db"))
	_, err := queue.Open(db, queue.Config{TTL: -time.Second})
	assert.Error(t, err)
}
