package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferryrun/ferry/runtime/state/dynalitetest"
)

var errDied = errors.New("the committer died here")

// dynamoPair is two clients of one dynalite sharing a fake clock: a
// committer to stop half-way, and another host that finds what it left.
func dynamoPair(t *testing.T) (a, b *Dynamo, clock *fakeClock) {
	t.Helper()
	endpoint := dynalitetest.Start(t)
	clock = &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return openDynamo(t, endpoint, WithDynamoClock(clock.Now)), openDynamo(t, endpoint, WithDynamoClock(clock.Now)), clock
}

// dieAt makes s's committers stop at step and leave everything as it is,
// as if the process had died there.
func dieAt(s *Dynamo, step string) {
	s.hook = func(got string) error {
		if got == step {
			return errDied
		}
		return nil
	}
}

// rawItem is key's item as stored, locks and all.
func rawItem(t *testing.T, s *Dynamo, ns, key string) dynItem {
	t.Helper()
	it, err := s.item(t.Context(), dynamoPK(kindKey, ns, key))
	require.NoError(t, err)
	return it
}

func rawRecord(t *testing.T, s *Dynamo, pk []byte) dynRecord {
	t.Helper()
	r, err := s.record(t.Context(), pk)
	require.NoError(t, err)
	return r
}

func setXY(t *testing.T, s Store) {
	t.Helper()
	require.NoError(t, s.Set(t.Context(), "job", "x", []byte("x1")))
	require.NoError(t, s.Set(t.Context(), "job", "y", []byte("y1")))
}

// xyCommit reads x and y at version 1, sets x and deletes y.
func xyCommit(x string, done string) *Commit {
	return &Commit{
		Reads:  map[string]uint64{"x": 1, "y": 1},
		Writes: map[string]Write{"x": {Value: []byte(x)}, "y": {Delete: true}},
		Done:   done, Output: []byte("output of " + x),
	}
}

func TestDynamo_Commit_CommitterDiesAfterLocking(t *testing.T) {
	ctx := t.Context()
	a, b, clock := dynamoPair(t)
	setXY(t, b)

	dieAt(a, "locked y")
	require.ErrorIs(t, a.Commit(ctx, "job", xyCommit("a", "inv")), errDied)
	lock := rawItem(t, b, "job", "y")
	require.NotEmpty(t, lock.lk, "y is left locked")

	// A pending transaction is invisible, and holds its keys for its
	// lease: commits conflict, a retried invocation too.
	assert.Equal(t, Entry{Value: []byte("x1"), Found: true, Version: 1}, read(t, b, "job", "x"))
	assert.Equal(t, Entry{Value: []byte("y1"), Found: true, Version: 1}, read(t, b, "job", "y"))
	assert.ErrorIs(t, b.Commit(ctx, "job", &Commit{Reads: map[string]uint64{"x": 1}, Writes: map[string]Write{"x": {Value: []byte("b")}}}), ErrConflict)
	assert.ErrorIs(t, b.Commit(ctx, "job", xyCommit("b", "inv")), ErrConflict)
	_, ok, err := b.Done(ctx, "job", "inv")
	require.NoError(t, err)
	assert.False(t, ok)

	// After the lease the dead committer is aborted: none of its writes
	// happen, its locks and record go, and the invocation may commit.
	clock.Add(DefaultDynamoLease + time.Millisecond)
	require.NoError(t, b.Commit(ctx, "job", xyCommit("b", "inv")))
	assert.Equal(t, Entry{Value: []byte("b"), Found: true, Version: 2}, read(t, b, "job", "x"))
	assert.Equal(t, Entry{Version: 2}, read(t, b, "job", "y"))
	out, ok, err := b.Done(ctx, "job", "inv")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "output of b", string(out))
	for _, k := range []string{"x", "y"} {
		assert.Empty(t, rawItem(t, b, "job", k).lk, "%s is unlocked", k)
	}
}

func TestDynamo_Commit_CommitterDiesAfterCommitPoint(t *testing.T) {
	for _, done := range []string{"", "inv"} {
		t.Run("done="+done, func(t *testing.T) {
			ctx := t.Context()
			a, b, clock := dynamoPair(t)
			setXY(t, b)

			dieAt(a, "committed")
			require.ErrorIs(t, a.Commit(ctx, "job", xyCommit("a", done)), errDied)
			x := rawItem(t, b, "job", "x")
			require.NotEmpty(t, x.lk)
			require.Equal(t, uint64(1), x.version, "nothing is applied yet")

			// Committed is committed: readers see the writes at once.
			assert.Equal(t, Entry{Value: []byte("a"), Found: true, Version: 2}, read(t, b, "job", "x"))
			assert.Equal(t, Entry{Version: 2}, read(t, b, "job", "y"))
			if done != "" {
				out, ok, err := b.Done(ctx, "job", done)
				require.NoError(t, err)
				assert.True(t, ok)
				assert.Equal(t, "output of a", string(out))
				assert.ErrorIs(t, b.Commit(ctx, "job", xyCommit("b", done)), ErrDuplicate)
			}

			// The next committer rolls it forward, lease or not, and
			// commits on top of it.
			require.NoError(t, b.Commit(ctx, "job", &Commit{Reads: map[string]uint64{"x": 2}, Writes: map[string]Write{"x": {Value: []byte("b")}}}))
			assert.Equal(t, Entry{Value: []byte("b"), Found: true, Version: 3}, read(t, b, "job", "x"))
			assert.Equal(t, Entry{Version: 2}, read(t, b, "job", "y"))

			// Past the lease, the first writer to meet a lock finishes the
			// whole transaction and retires its record.
			rec := rawItem(t, b, "job", "y").lr
			require.NotEmpty(t, rec, "y is still locked")
			clock.Add(DefaultDynamoLease + time.Millisecond)
			require.NoError(t, b.Set(ctx, "job", "y", []byte("y3")))
			assert.Equal(t, Entry{Value: []byte("y3"), Found: true, Version: 3}, read(t, b, "job", "y"))
			r := rawRecord(t, b, rec)
			if done == "" {
				assert.False(t, r.exists, "a plain record is deleted")
			} else {
				assert.True(t, r.exists)
				assert.Empty(t, r.w, "an idempotency record keeps only its output")
				out, ok, err := b.Done(ctx, "job", done)
				require.NoError(t, err)
				assert.True(t, ok)
				assert.Equal(t, "output of a", string(out))
			}
		})
	}
}

// dieAfterApplyingX makes s's committers apply x and die before applying
// y, which they apply in parallel.
func dieAfterApplyingX(s *Dynamo) {
	xApplied := make(chan struct{})
	s.hook = func(step string) error {
		switch step {
		case "applied x":
			close(xApplied)
		case "apply y":
			select {
			case <-xApplied:
			case <-time.After(10 * time.Second):
			}
			return errDied
		}
		return nil
	}
}

func TestDynamo_Commit_CommitterDiesMidApply(t *testing.T) {
	ctx := t.Context()
	a, b, _ := dynamoPair(t)
	setXY(t, b)

	dieAfterApplyingX(a)
	require.ErrorIs(t, a.Commit(ctx, "job", xyCommit("a", "")), errDied)
	x, y := rawItem(t, b, "job", "x"), rawItem(t, b, "job", "y")
	require.Equal(t, uint64(2), x.version, "x is applied")
	require.Empty(t, x.lk)
	require.Equal(t, uint64(1), y.version, "y is not")
	require.NotEmpty(t, y.lk)

	assert.Equal(t, Entry{Value: []byte("a"), Found: true, Version: 2}, read(t, b, "job", "x"))
	assert.Equal(t, Entry{Version: 2}, read(t, b, "job", "y"), "y reads as written")
	require.NoError(t, b.Commit(ctx, "job", &Commit{
		Reads:  map[string]uint64{"x": 2, "y": 2},
		Writes: map[string]Write{"y": {Value: []byte("b")}},
	}))
	assert.Equal(t, Entry{Value: []byte("b"), Found: true, Version: 3}, read(t, b, "job", "y"))
	assert.Empty(t, rawItem(t, b, "job", "x").lk)
}

func TestDynamo_Commit_SlowCommitterIsAbortedAndConflicts(t *testing.T) {
	ctx := t.Context()
	a, b, clock := dynamoPair(t)
	setXY(t, b)

	// a stalls after locking, past its lease.
	stalled, resume := make(chan struct{}), make(chan struct{})
	a.hook = func(step string) error {
		if step == "locked y" {
			close(stalled)
			<-resume
		}
		return nil
	}
	result := make(chan error, 1)
	go func() { result <- a.Commit(ctx, "job", xyCommit("a", "")) }()
	<-stalled
	clock.Add(DefaultDynamoLease + time.Millisecond)
	require.NoError(t, b.Commit(ctx, "job", &Commit{Reads: map[string]uint64{"x": 1}, Writes: map[string]Write{"x": {Value: []byte("b")}}}))
	close(resume)

	assert.ErrorIs(t, <-result, ErrConflict, "aborted at its commit point")
	assert.Equal(t, Entry{Value: []byte("b"), Found: true, Version: 2}, read(t, b, "job", "x"))
	assert.Equal(t, Entry{Value: []byte("y1"), Found: true, Version: 1}, read(t, b, "job", "y"))
	assert.Empty(t, rawItem(t, b, "job", "y").lk, "the loser released its locks")
}

func TestDynamo_Set_WaitsForALiveTransaction(t *testing.T) {
	ctx := t.Context()
	a, b, clock := dynamoPair(t)
	setXY(t, b)
	dieAt(a, "locked y")
	require.ErrorIs(t, a.Commit(ctx, "job", xyCommit("a", "")), errDied)

	// A blind write cannot conflict on a version, so it waits for the
	// holder: here, for its lease to end.
	done := make(chan error, 1)
	go func() { done <- b.Set(ctx, "job", "y", []byte("b")) }()
	select {
	case err := <-done:
		t.Fatalf("Set returned %v while the key was locked", err)
	case <-time.After(50 * time.Millisecond):
	}
	clock.Add(DefaultDynamoLease + time.Millisecond)
	require.NoError(t, <-done)
	assert.Equal(t, Entry{Value: []byte("b"), Found: true, Version: 2}, read(t, b, "job", "y"))
	assert.Equal(t, Entry{Value: []byte("x1"), Found: true, Version: 1}, read(t, b, "job", "x"))
}

func TestDynamo_Commit_ClearsStaleLocks(t *testing.T) {
	ctx := t.Context()
	_, s, _ := dynamoPair(t)
	setXY(t, s)
	// A lock whose record is gone (a late duplicate of a finished
	// transaction's request), and one whose record was replaced.
	require.NoError(t, s.update(ctx, dynamoPK(kindKey, "job", "x"), "SET #lk = :id, #lr = :rec", "attribute_exists(#v)",
		map[string]types.AttributeValue{":id": avS("gone"), ":rec": avB(dynamoPK(kindTx, "job", "gone"))}))
	require.NoError(t, s.Commit(ctx, "job", &Commit{Done: "inv"}))
	require.NoError(t, s.update(ctx, dynamoPK(kindKey, "job", "y"), "SET #lk = :id, #lr = :rec", "attribute_exists(#v)",
		map[string]types.AttributeValue{":id": avS("older"), ":rec": avB(dynamoPK(kindDone, "job", "inv"))}))

	assert.Equal(t, Entry{Value: []byte("x1"), Found: true, Version: 1}, read(t, s, "job", "x"))
	require.NoError(t, s.Commit(ctx, "job", xyCommit("s", "")))
	assert.Equal(t, Entry{Value: []byte("s"), Found: true, Version: 2}, read(t, s, "job", "x"))
	assert.Equal(t, Entry{Version: 2}, read(t, s, "job", "y"))
}

// TestDynamo_Commit_LateLockIsNotAppliedTwice puts a lock back on a key
// its transaction has applied, as a late duplicate of the lock request
// would: rolling that transaction forward must not apply it again.
func TestDynamo_Commit_LateLockIsNotAppliedTwice(t *testing.T) {
	ctx := t.Context()
	a, b, _ := dynamoPair(t)
	setXY(t, b)
	dieAfterApplyingX(a)
	require.ErrorIs(t, a.Commit(ctx, "job", xyCommit("a", "")), errDied)
	y := rawItem(t, b, "job", "y")
	require.NotEmpty(t, y.lk)
	require.NoError(t, b.update(ctx, dynamoPK(kindKey, "job", "x"), "SET #lk = :id, #lr = :rec", "#tx = :id",
		map[string]types.AttributeValue{":id": avS(y.lk), ":rec": avB(y.lr)}))

	assert.Equal(t, Entry{Value: []byte("a"), Found: true, Version: 2}, read(t, b, "job", "x"))
	require.NoError(t, b.Commit(ctx, "job", &Commit{Reads: map[string]uint64{"x": 2}, Writes: map[string]Write{"x": {Value: []byte("b")}}}))
	assert.Equal(t, Entry{Value: []byte("b"), Found: true, Version: 3}, read(t, b, "job", "x"))
}

func TestDynamo_Commit_ExpiredRecordIsFinishedBeforeReuse(t *testing.T) {
	ctx := t.Context()
	a, b, clock := dynamoPair(t)
	setXY(t, b)
	dieAt(a, "committed")
	c := xyCommit("a", "inv")
	c.TTL = time.Second
	require.ErrorIs(t, a.Commit(ctx, "job", c), errDied)

	// The record expires while its writes are still unapplied; taking
	// its place must not lose them.
	clock.Add(2 * time.Second)
	_, ok, err := b.Done(ctx, "job", "inv")
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, b.Commit(ctx, "job", &Commit{Done: "inv", Output: []byte("again")}))
	assert.Equal(t, Entry{Value: []byte("a"), Found: true, Version: 2}, read(t, b, "job", "x"))
	assert.Equal(t, Entry{Version: 2}, read(t, b, "job", "y"))
	assert.Empty(t, rawItem(t, b, "job", "x").lk)
	out, ok, err := b.Done(ctx, "job", "inv")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "again", string(out))
}

// loseReplies makes the SDK's nth write request (PutItem, UpdateItem,
// DeleteItem) reach the server and then fail as a dropped connection
// would, so that the SDK retries a request that has already landed.
func loseReplies(n int) func(*dynamodb.Options) {
	var writes atomic.Int32
	lose := middleware.FinalizeMiddlewareFunc("LoseReply", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleFinalize(ctx, in)
		switch awsmiddleware.GetOperationName(ctx) {
		case "PutItem", "UpdateItem", "DeleteItem":
			if int(writes.Add(1)) == n {
				return out, md, errors.New("read tcp: connection reset by peer (the reply was lost)")
			}
		}
		return out, md, err
	})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error { return s.Finalize.Insert(lose, "Retry", middleware.After) })
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	}
}

// TestDynamo_Commit_SurvivesSDKRetries loses the reply to each write of
// each kind of commit in turn: the SDK retries a request that landed, its
// condition fails, and the step must see that it had succeeded, neither
// conflicting nor applying twice.
func TestDynamo_Commit_SurvivesSDKRetries(t *testing.T) {
	endpoint := dynalitetest.Start(t)
	commits := []struct {
		name   string
		writes int // write requests the commit makes
		c      func(v uint64) *Commit
	}{
		{"fast path", 1, func(v uint64) *Commit {
			return &Commit{Reads: map[string]uint64{"x": v}, Writes: map[string]Write{"x": {Value: []byte("x")}}}
		}},
		{"blind write", 1, func(uint64) *Commit { return &Commit{Writes: map[string]Write{"x": {Value: []byte("x")}}} }},
		// put record, lock x and y, commit point, apply x and y, delete
		// record.
		{"transaction", 7, func(v uint64) *Commit {
			return &Commit{Reads: map[string]uint64{"x": v, "y": 0}, Writes: map[string]Write{"x": {Value: []byte("x")}}}
		}},
		// The idempotency record stays: finalized, not deleted.
		{"transaction with idempotency key", 7, func(v uint64) *Commit {
			return &Commit{Reads: map[string]uint64{"x": v}, Writes: map[string]Write{"x": {Value: []byte("x")}, "y": {Delete: true}}, Done: "inv-" + strconv.FormatUint(v, 10)}
		}},
		{"idempotency key alone", 1, func(v uint64) *Commit { return &Commit{Done: "only-" + strconv.FormatUint(v, 10)} }},
	}
	for i, tc := range commits {
		for n := 1; n <= tc.writes; n++ {
			t.Run(fmt.Sprintf("%s, reply %d lost", tc.name, n), func(t *testing.T) {
				ctx := t.Context()
				table := fmt.Sprintf("retries-%d-%d", i, n)
				s, err := OpenDynamo(ctx, "dynamodb://"+table+"?create=true&region=eu-west-1&endpoint="+endpoint,
					WithDynamoCredentials(testCredentials), func(o *dynamoOptions) { o.sdk = loseReplies(n) })
				require.NoError(t, err)
				defer s.Close()

				before := read(t, s, "job", "x").Version
				require.NoError(t, s.Commit(ctx, "job", tc.c(before)))
				after := read(t, s, "job", "x").Version
				if tc.name != "idempotency key alone" {
					assert.Equal(t, before+1, after, "applied once")
				}
				for _, k := range []string{"x", "y"} {
					assert.Empty(t, rawItem(t, s, "job", k).lk, "%s is unlocked", k)
				}
			})
		}
	}
}

// TestDynamo_writeOne_RepeatedIsApplied is the fast path's own retry
// check: the same write again, with the same transaction id, is
// recognised as applied rather than conflicting or applying twice.
func TestDynamo_writeOne_RepeatedIsApplied(t *testing.T) {
	ctx := t.Context()
	_, s, _ := dynamoPair(t)
	for _, read := range []bool{true, false} {
		key := fmt.Sprint("read=", read)
		op := dynOp{key: key, pk: dynamoPK(kindKey, "job", key), kind: opSet, value: []byte("v"), read: read}
		require.NoError(t, s.writeOne(ctx, op, "T1"))
		require.NoError(t, s.writeOne(ctx, op, "T1"), "the same write again")
		assert.Equal(t, uint64(1), rawItem(t, s, "job", key).version, "applied once")
		// Another transaction's write is a new write: a stale read
		// conflicts, a blind write applies.
		if err := s.writeOne(ctx, op, "T2"); read {
			assert.ErrorIs(t, err, ErrConflict)
		} else {
			assert.NoError(t, err)
			assert.Equal(t, uint64(2), rawItem(t, s, "job", key).version)
		}
	}
}

func TestDynamo_HostileNamespaces(t *testing.T) {
	ctx := t.Context()
	_, s, _ := dynamoPair(t)
	// Pairs that would collide if namespace and key were concatenated.
	pairs := [][2]string{{"a", "bc"}, {"ab", "c"}, {"a\x00", "b"}, {"a", "\x00b"}, {"\xff", ""}, {"", "\xff"}, {"", ""}, {"\x00", "\x00"}}
	// An idempotency key is never empty; the namespace's may be.
	id := func(p [2]string) string { return p[1] + "#" }
	for i, p := range pairs {
		require.NoError(t, s.Set(ctx, p[0], p[1], []byte(strconv.Itoa(i))), "%q", p)
		require.NoError(t, s.Commit(ctx, p[0], &Commit{Done: id(p), Output: []byte(strconv.Itoa(i))}), "%q", p)
	}
	for i, p := range pairs {
		assert.Equal(t, Entry{Value: []byte(strconv.Itoa(i)), Found: true, Version: 1}, read(t, s, p[0], p[1]), "%q", p)
		out, ok, err := s.Done(ctx, p[0], id(p))
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, strconv.Itoa(i), string(out), "%q", p)
	}
	// An empty value, in a transaction and out of one.
	require.NoError(t, s.Commit(ctx, "\x00ns", &Commit{Reads: map[string]uint64{"\xfe": 0}, Writes: map[string]Write{"\xfe": {}, "b": {Value: []byte{}}}}))
	for _, k := range []string{"\xfe", "b"} {
		e := read(t, s, "\x00ns", k)
		assert.True(t, e.Found, "%q", k)
		assert.Empty(t, e.Value)
	}
}

func TestDynamo_Commit_RefusesWhatDynamoCannotHold(t *testing.T) {
	ctx := t.Context()
	_, s, _ := dynamoPair(t)
	many := map[string]Write{}
	for i := range maxDynamoCommitKeys + 1 {
		many[strconv.Itoa(i)] = Write{Value: []byte("v")}
	}
	half := make([]byte, 250<<10)
	tests := []struct {
		name    string
		c       *Commit
		wantErr string
	}{
		{"too many keys", &Commit{Writes: many}, "at most 256"},
		{"value too big", &Commit{Writes: map[string]Write{"0": {Value: make([]byte, 400<<10)}}}, "do not fit in a DynamoDB item"},
		{"writes too big together", &Commit{Writes: map[string]Write{"0": {Value: half}, "1": {Value: half}}}, "must fit in a DynamoDB item"},
		{"output too big", &Commit{Writes: map[string]Write{"0": {Value: half}}, Done: "inv", Output: half}, "must fit in a DynamoDB item"},
		{"key too long", &Commit{Writes: map[string]Write{strings.Repeat("k", 2048): {}, "0": {}}}, "DynamoDB keys hold at most 2048"},
		{"idempotency key too long", &Commit{Writes: map[string]Write{"0": {}}, Done: strings.Repeat("i", 2048)}, "DynamoDB keys hold at most 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Commit(ctx, "job", tt.c)
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotErrorIs(t, err, ErrConflict)
			assert.Equal(t, Entry{}, read(t, s, "job", "0"), "nothing is written")
		})
	}
	// Just under the limits is fine.
	require.NoError(t, s.Commit(ctx, "job", &Commit{Writes: map[string]Write{"0": {Value: half}}, Done: "inv", Output: make([]byte, 100<<10)}))
}

func TestOpenDynamo(t *testing.T) {
	endpoint := dynalitetest.Start(t)
	ctx := t.Context()
	db := openDynamo(t, endpoint).db
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("string-keys"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	require.NoError(t, err)

	tests := []struct {
		name, url string
		wantErr   []string
	}{
		{"creates the table", "dynamodb://new-table?create=true&endpoint=" + endpoint, nil},
		{"opens it again", "dynamodb://new-table?endpoint=" + endpoint, nil},
		{"missing table", "dynamodb://missing?endpoint=" + endpoint,
			[]string{`table "missing" does not exist`, "aws dynamodb create-table --table-name missing --attribute-definitions AttributeName=pk,AttributeType=B", "create=true"}},
		{"wrong key schema", "dynamodb://string-keys?endpoint=" + endpoint, []string{"partition key pk of type B"}},
		{"bad table name", "dynamodb://a?endpoint=" + endpoint, []string{"want dynamodb://TABLE"}},
		{"path", "dynamodb://table/x?endpoint=" + endpoint, []string{"want dynamodb://TABLE"}},
		{"endpoint scheme", "dynamodb://table?endpoint=ftp://127.0.0.1", []string{"want http:// or https://"}},
		{"unknown parameter", "dynamodb://table?regoin=eu-west-1", []string{`unknown parameter "regoin"`}},
		{"bad create", "dynamodb://table?create=yes-please", []string{"create="}},
		{"no server", "dynamodb://table?endpoint=http://127.0.0.1:1", []string{"describe table"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			s, err := OpenDynamo(ctx, tt.url+"&region=eu-west-1", WithDynamoCredentials(testCredentials),
				func(o *dynamoOptions) { o.sdk = func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 } })
			if tt.wantErr == nil {
				require.NoError(t, err)
				defer s.Close()
				require.NoError(t, s.Set(ctx, "job", "k", []byte("v")))
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestDynamoOps_RoundTrip(t *testing.T) {
	ops := []dynOp{
		{key: "", kind: opRead},
		{key: "\x00", kind: opSet, value: []byte{}},
		{key: "a", kind: opDelete},
		{key: "b\xff", kind: opSet, value: []byte("value\x00")},
	}
	got, err := decodeOps(encodeOps(ops))
	require.NoError(t, err)
	require.Len(t, got, len(ops))
	for i := range ops {
		assert.Equal(t, ops[i].key, got[i].key)
		assert.Equal(t, ops[i].kind, got[i].kind)
		assert.Equal(t, string(ops[i].value), string(got[i].value))
	}
	for _, bad := range [][]byte{{'x', 0}, {opSet, 1, 'k'}, {opSet, 1, 'k', 9}, {opRead, 5}} {
		_, err := decodeOps(bad)
		assert.Error(t, err, "%q", bad)
	}
	ns, err := pkNamespace(dynamoPK(kindDone, "name\x00space", "id"))
	require.NoError(t, err)
	assert.Equal(t, "name\x00space", ns)
}

// The bounds the store reports are honest: a value at the bound commits,
// alone and in a transaction with an idempotency record and a long key;
// the runtime refuses anything larger before it reaches the store.
func TestDynamo_StoreLimitsFit(t *testing.T) {
	s, _, _ := dynamoPair(t)
	lim := s.StoreLimits()
	require.Positive(t, lim.MaxValueBytes)
	assert.Less(t, lim.MaxValueBytes, maxDynamoItemBytes)
	ctx := context.Background()
	big := bytes.Repeat([]byte("v"), lim.MaxValueBytes)
	key := strings.Repeat("k", 1024) // the runtime's longest key
	require.NoError(t, s.Commit(ctx, "job", &Commit{Writes: map[string]Write{key: {Value: big}}}))
	e, err := s.Read(ctx, "job", key)
	require.NoError(t, err)
	require.Equal(t, len(big), len(e.Value))
	require.NoError(t, s.Commit(ctx, "job", &Commit{Reads: map[string]uint64{key: e.Version},
		Writes: map[string]Write{key: {Value: big[:lim.MaxCommitBytes-len(key)-64]}}, Done: "once", Output: []byte("ok")}))
}
