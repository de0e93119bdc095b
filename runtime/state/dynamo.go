package state

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Dynamo is a Store in one DynamoDB table that every host of a job can
// reach. It needs only single-item operations (GetItem, PutItem,
// UpdateItem, DeleteItem with condition expressions), so it runs on
// DynamoDB and on servers that speak its API without transactions, such
// as dynalite.
//
// Every item has a binary partition key pk: a kind byte ('k' a key, 't' a
// transaction record, 'd' an idempotency record), the namespace's length
// as a uvarint, the namespace, then the key or id, so namespaces and keys
// may hold any bytes. A key item holds v (the version), val (the value;
// absent when empty), del (a tombstone), tx (the last transaction that
// wrote it) and, while a transaction holds it, lk (that transaction's id)
// and lr (the pk of its record).
//
// A commit that writes one key and records no idempotency key is one
// conditional UpdateItem: the version read is still current and no
// transaction holds the key. Any other commit is a transaction built from
// single-item writes around a record that holds its fate:
//
//  1. put the record, pending, with every write and a lease; an
//     idempotency record already committed is ErrDuplicate;
//  2. lock each key in key order (lk, lr), checking the version read;
//  3. the commit point: one conditional update of the record, pending to
//     committed;
//  4. apply each write and unlock;
//  5. delete the record, or for an idempotency record drop its writes and
//     let DynamoDB's TTL (attribute exp) remove it once it has expired.
//
// Whoever meets a lock reads the holder's record: committed, the reader
// sees the holder's write and a writer applies it for the holder (roll
// forward); pending past its lease, the holder is taken for dead and its
// record deleted (abort); pending within its lease, a commit conflicts; a
// record that is gone, or now another transaction's, leaves a stale lock
// that anyone may remove. A record is deleted, replaced or given a TTL
// only when it is pending or all its writes are applied, so a committed
// write is never lost, and a committer that dies at any step blocks the
// keys it locked for at most the lease. Every step tolerates the SDK's
// automatic retries: a condition that fails because the first try had
// landed is recognised by the id it left behind.
//
// DynamoDB items hold at most 400 KB: a value, or a transaction's writes
// and output together, that would not fit is refused before anything is
// written.
type Dynamo struct {
	db    *dynamodb.Client
	table string
	where string // the URL, for errors
	now   func() time.Time
	lease time.Duration

	closed atomic.Bool
	// hook, set by tests, runs between the steps of a transaction
	// ("record", "locked KEY", "committed", "apply KEY", "applied KEY");
	// an error stops the committer there, as if it had died.
	hook func(step string) error
}

var _ Store = (*Dynamo)(nil)

// DefaultDynamoLease is how long a transaction may hold its keys before
// another committer takes it for dead and aborts it (or, if it had
// committed, finishes it).
const DefaultDynamoLease = 5 * time.Second

var _ Bounded = (*Dynamo)(nil)

// StoreLimits implements Bounded: a value, and a commit's writes (which a
// transaction's record holds together), must fit in one item, with room
// for the key (at most maxDynamoKeyBytes), the lock and the attributes.
// The output of an idempotent commit shares the record too; it is bounded
// by the job's output limit and checked when the commit is built.
func (d *Dynamo) StoreLimits() Limits {
	n := maxDynamoItemBytes - 2*maxDynamoKeyBytes - dynamoItemOverhead
	return Limits{MaxValueBytes: n, MaxCommitBytes: n}
}

const (
	// maxDynamoCommitKeys bounds the keys one commit touches: each costs
	// two round trips when the commit is a transaction.
	maxDynamoCommitKeys = 256
	// maxDynamoItemBytes is DynamoDB's item size limit.
	maxDynamoItemBytes = 400 * 1024
	// maxDynamoKeyBytes is DynamoDB's limit on a partition key.
	maxDynamoKeyBytes = 2048
	// dynamoItemOverhead bounds the attribute names, numbers and ids an
	// item carries besides its key, value and lock.
	dynamoItemOverhead = 256
	// dynamoAttempts bounds how often one step clears a lock in its way
	// and tries again before it reports a conflict.
	dynamoAttempts = 4
	// dynamoParallel is how many keys a commit applies or checks at once.
	dynamoParallel = 8
	// dynamoFinishTimeout bounds applying a committed transaction, which
	// goes on even when the caller's context ends: the commit stands, and
	// its locks should not wait for another committer.
	dynamoFinishTimeout = 10 * time.Second
	// dynamoRecordGrace is how long past its lease a pending record is
	// kept before DynamoDB's TTL may delete it (an abort, which anyone
	// may do after the lease anyway).
	dynamoRecordGrace = time.Hour
)

// Item kinds: the first byte of pk.
const (
	kindKey  = 'k'
	kindTx   = 't'
	kindDone = 'd'
)

// Record states.
const (
	stPending   = "p"
	stCommitted = "c"
)

// Operations in a record's write list.
const (
	opRead   = 'r' // locked for its version only
	opSet    = 's'
	opDelete = 'd'
)

// DynamoOption changes how OpenDynamo sets up the store.
type DynamoOption func(*dynamoOptions)

type dynamoOptions struct {
	now   func() time.Time
	lease time.Duration
	creds aws.CredentialsProvider
	sdk   func(*dynamodb.Options) // tests: retries, injected faults
}

// WithDynamoClock makes the store read now for idempotency record expiry
// and transaction leases. All hosts sharing a table should agree on the
// time to within a fraction of the lease.
func WithDynamoClock(now func() time.Time) DynamoOption {
	return func(o *dynamoOptions) { o.now = now }
}

// WithDynamoLease sets how long a transaction may hold its keys
// (DefaultDynamoLease when d <= 0): the longest a crashed committer can
// block them, and the longest a commit may take before others may abort
// it.
func WithDynamoLease(d time.Duration) DynamoOption {
	return func(o *dynamoOptions) {
		if d > 0 {
			o.lease = d
		}
	}
}

// WithDynamoCredentials replaces the SDK's default credential chain.
func WithDynamoCredentials(p aws.CredentialsProvider) DynamoOption {
	return func(o *dynamoOptions) { o.creds = p }
}

// tableNameRE is DynamoDB's rule for table names.
var tableNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// OpenDynamo opens the store at rawURL,
// dynamodb://TABLE?region=REGION&endpoint=URL&create=true:
//
//   - region defaults to the SDK's (AWS_REGION, the shared config), else
//     us-east-1;
//   - endpoint, http:// or https://, replaces DynamoDB's (dynalite, a VPC
//     endpoint);
//   - create=true creates the table if it is missing (on-demand billing,
//     TTL on attribute exp) and waits until it is active.
//
// Credentials come from the SDK's default chain unless an option names
// them. The table must have a binary partition key named pk and no sort
// key; a missing table is an error that says how to create it.
func OpenDynamo(ctx context.Context, rawURL string, opts ...DynamoOption) (*Dynamo, error) {
	where := Redacted(rawURL)
	o := dynamoOptions{now: time.Now, lease: DefaultDynamoLease}
	for _, opt := range opts {
		opt(&o)
	}
	table, region, endpoint, create, err := parseDynamoURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", where, err)
	}

	// The SDK keeps 10 idle connections per host; every read and commit
	// step is a request, so keep enough for many concurrent calls. (A
	// buildable client, so that AWS_CA_BUNDLE still applies.)
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 128, 64
	})
	load := []func(*config.LoadOptions) error{config.WithHTTPClient(hc)}
	if region != "" {
		load = append(load, config.WithRegion(region))
	}
	if o.creds != nil {
		load = append(load, config.WithCredentialsProvider(o.creds))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: load AWS configuration: %w", where, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	db := dynamodb.NewFromConfig(cfg, func(do *dynamodb.Options) {
		if endpoint != "" {
			do.BaseEndpoint = aws.String(endpoint)
		}
		if o.sdk != nil {
			o.sdk(do)
		}
	})
	d := &Dynamo{db: db, table: table, where: where, now: o.now, lease: o.lease}
	if err := d.ensureTable(ctx, create); err != nil {
		return nil, fmt.Errorf("open state store %s: %w", where, err)
	}
	return d, nil
}

func parseDynamoURL(rawURL string) (table, region, endpoint string, create bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", "", false, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "dynamodb" {
		return "", "", "", false, errors.New("want dynamodb://TABLE")
	}
	table = u.Host
	if !tableNameRE.MatchString(table) || u.User != nil || (u.Path != "" && u.Path != "/") {
		return "", "", "", false, fmt.Errorf("want dynamodb://TABLE, TABLE 3 to 255 of A-Z a-z 0-9 _ . -; got %q", u.Host+u.Path)
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "region":
			region = v
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return "", "", "", false, fmt.Errorf("endpoint %q: want http:// or https:// and a host", v)
			}
			endpoint = v
		case "create":
			if create, err = strconv.ParseBool(v); err != nil {
				return "", "", "", false, fmt.Errorf("create=%q: want true or false", v)
			}
		default:
			return "", "", "", false, fmt.Errorf("unknown parameter %q; want region, endpoint or create", k)
		}
	}
	return table, region, endpoint, create, nil
}

// ensureTable checks that the table exists with Ferry's key schema,
// creating it first when create is set.
func (d *Dynamo) ensureTable(ctx context.Context, create bool) error {
	in := &dynamodb.DescribeTableInput{TableName: &d.table}
	out, err := d.db.DescribeTable(ctx, in)
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound) && create:
		return d.createTable(ctx)
	case errors.As(err, &notFound):
		return fmt.Errorf("table %q does not exist; create it with %q and, so that DynamoDB drops expired records, %q; or add create=true to the URL",
			d.table,
			"aws dynamodb create-table --table-name "+d.table+" --attribute-definitions AttributeName=pk,AttributeType=B --key-schema AttributeName=pk,KeyType=HASH --billing-mode PAY_PER_REQUEST",
			"aws dynamodb update-time-to-live --table-name "+d.table+" --time-to-live-specification Enabled=true,AttributeName=exp")
	case err != nil:
		return fmt.Errorf("describe table %q: %w", d.table, err)
	}
	if err := checkSchema(d.table, out.Table); err != nil {
		return err
	}
	if out.Table.TableStatus != types.TableStatusActive {
		return d.waitActive(ctx)
	}
	return nil
}

func (d *Dynamo) createTable(ctx context.Context) error {
	_, err := d.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &d.table,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeB}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) { // in use: another host created it first
		return fmt.Errorf("create table %q: %w", d.table, err)
	}
	if err := d.waitActive(ctx); err != nil {
		return err
	}
	_, err = d.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &d.table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("exp"), Enabled: aws.Bool(true)},
	})
	// Correctness never depends on TTL (reads compare expiry with the
	// clock), so a server without it (dynalite) is fine, and so is a
	// table where another host already enabled it.
	var api smithy.APIError
	if err != nil && !(errors.As(err, &api) && (api.ErrorCode() == "UnknownOperationException" || strings.Contains(api.ErrorMessage(), "already enabled"))) {
		return fmt.Errorf("enable TTL on table %q: %w", d.table, err)
	}
	return nil
}

func (d *Dynamo) waitActive(ctx context.Context) error {
	w := dynamodb.NewTableExistsWaiter(d.db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, 5*time.Second
	})
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: &d.table}, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("wait for table %q: %w", d.table, err)
	}
	return checkSchema(d.table, out.Table)
}

func checkSchema(table string, t *types.TableDescription) error {
	ok := len(t.KeySchema) == 1 && aws.ToString(t.KeySchema[0].AttributeName) == "pk" && t.KeySchema[0].KeyType == types.KeyTypeHash
	if ok {
		ok = slices.ContainsFunc(t.AttributeDefinitions, func(a types.AttributeDefinition) bool {
			return aws.ToString(a.AttributeName) == "pk" && a.AttributeType == types.ScalarAttributeTypeB
		})
	}
	if !ok {
		var have []string
		for _, k := range t.KeySchema {
			have = append(have, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
		}
		return fmt.Errorf("table %q has key schema [%s]; ferry needs a partition key pk of type B and no sort key", table, strings.Join(have, ", "))
	}
	return nil
}

// String is the store's URL.
func (d *Dynamo) String() string { return d.where }

// dynamoPK is an item's partition key.
func dynamoPK(kind byte, ns, name string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(ns)+len(name))
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(ns)))
	b = append(b, ns...)
	return append(b, name...)
}

// pkNamespace is the namespace in a partition key.
func pkNamespace(pk []byte) (string, error) {
	if len(pk) > 0 {
		n, k := binary.Uvarint(pk[1:])
		if k > 0 && n <= uint64(len(pk)-1-k) {
			return string(pk[1+k : 1+k+int(n)]), nil
		}
	}
	return "", fmt.Errorf("corrupt partition key %x", pk)
}

// newTxID names one attempt at a commit: 128 random bits, txIDLen
// characters.
func newTxID() string { return rand.Text() }

const txIDLen = 26

// Get implements Store.
func (d *Dynamo) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	e, err := d.read(ctx, "get", ns, key)
	return e.Value, e.Found, err
}

// Read implements Store.
func (d *Dynamo) Read(ctx context.Context, ns, key string) (Entry, error) {
	return d.read(ctx, "read", ns, key)
}

func (d *Dynamo) read(ctx context.Context, op, ns, key string) (Entry, error) {
	if d.closed.Load() {
		return Entry{}, d.wrap(op, ns, key, ErrClosed)
	}
	e, err := d.entry(ctx, dynamoPK(kindKey, ns, key), key)
	return e, d.wrap(op, ns, key, err)
}

// entry is key's committed state: the item, or the write of a committed
// transaction that still holds it, taken from its record. A pending
// transaction's lock does not matter: until its commit point the item is
// the committed state. Reading never writes; locks are cleared by
// writers.
func (d *Dynamo) entry(ctx context.Context, pk []byte, key string) (Entry, error) {
	var it dynItem
	var gone string // a holder whose record was gone
	for range 4 * dynamoAttempts {
		var err error
		if it, err = d.item(ctx, pk); err != nil || it.lk == "" || it.tx == it.lk || it.lk == gone {
			// A holder still there after its record went never
			// committed: a committed record goes only once every key is
			// applied and unlocked.
			return it.entry(), err
		}
		r, err := d.record(ctx, it.lr)
		if err != nil {
			return Entry{}, err
		}
		switch {
		case !r.exists || r.tx != it.lk:
			// Aborted, or committed and finished since the item was
			// read, in which case the item is out of date: read again.
			gone = it.lk
		case !r.committed:
			return it.entry(), nil
		default:
			return committedEntry(it, r, key)
		}
	}
	return Entry{}, fmt.Errorf("the key kept changing while it was read: %w", ErrConflict)
}

// committedEntry is key's state once r, the transaction that holds it,
// is applied.
func committedEntry(it dynItem, r dynRecord, key string) (Entry, error) {
	ops, err := r.ops()
	if err != nil {
		return Entry{}, err
	}
	i, ok := findOp(ops, key)
	if !ok || ops[i].kind == opRead {
		return it.entry(), nil
	}
	if ops[i].kind == opDelete {
		return Entry{Version: it.version + 1}, nil
	}
	return Entry{Value: append([]byte{}, ops[i].value...), Found: true, Version: it.version + 1}, nil
}

// Set implements Store.
func (d *Dynamo) Set(ctx context.Context, ns, key string, value []byte) error {
	return d.wrap("set", ns, key, d.blind(ctx, ns, key, Write{Value: value}))
}

// Delete implements Store.
func (d *Dynamo) Delete(ctx context.Context, ns, key string) error {
	return d.wrap("delete", ns, key, d.blind(ctx, ns, key, Write{Delete: true}))
}

// blind writes key without reading it. It cannot conflict on a version,
// only with a transaction that holds the key; it waits for that one to
// finish or to pass its lease, for up to two leases, then reports the
// conflict.
func (d *Dynamo) blind(ctx context.Context, ns, key string, w Write) error {
	c := &Commit{Writes: map[string]Write{key: w}}
	deadline := time.Now().Add(2 * d.lease)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := d.commit(ctx, ns, c)
		if !errors.Is(err, ErrConflict) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Commit implements Store.
func (d *Dynamo) Commit(ctx context.Context, ns string, c *Commit) error {
	return d.wrap("commit", ns, "", d.commit(ctx, ns, c))
}

// dynOp is what a commit does to one key.
type dynOp struct {
	key     string
	pk      []byte
	kind    byte // opRead, opSet or opDelete
	value   []byte
	read    bool // version must still be current
	version uint64
}

func (d *Dynamo) commit(ctx context.Context, ns string, c *Commit) error {
	if d.closed.Load() {
		return ErrClosed
	}
	ops, err := planDynamo(ns, c)
	if err != nil {
		return err
	}
	switch {
	case c.Done == "" && len(c.Writes) == 0:
		return d.validate(ctx, ops)
	case c.Done == "" && len(ops) == 1:
		return d.writeOne(ctx, ops[0], newTxID())
	}
	return d.transact(ctx, ns, c, ops)
}

// planDynamo is c's keys in order, each with what to check and write,
// refused if DynamoDB could not hold them.
func planDynamo(ns string, c *Commit) ([]dynOp, error) {
	ops := make([]dynOp, 0, len(c.Reads)+len(c.Writes))
	for k, w := range c.Writes {
		op := dynOp{key: k, kind: opSet, value: w.Value}
		if w.Delete {
			op.kind, op.value = opDelete, nil
		}
		op.version, op.read = c.Reads[k]
		ops = append(ops, op)
	}
	for k, v := range c.Reads {
		if _, written := c.Writes[k]; !written {
			ops = append(ops, dynOp{key: k, kind: opRead, read: true, version: v})
		}
	}
	if len(ops) > maxDynamoCommitKeys {
		return nil, fmt.Errorf("%d keys in one commit; at most %d", len(ops), maxDynamoCommitKeys)
	}
	// Key order is lock order, and within a namespace it is also the
	// order of the partition keys.
	slices.SortFunc(ops, func(a, b dynOp) int { return strings.Compare(a.key, b.key) })
	lockRef := len(dynamoPK(kindTx, ns, "")) + txIDLen // the lr a locked item carries
	if c.Done != "" {
		lockRef = len(dynamoPK(kindDone, ns, c.Done))
	}
	if lockRef > maxDynamoKeyBytes {
		return nil, fmt.Errorf("idempotency key of %d bytes; DynamoDB keys hold at most %d with the namespace", len(c.Done), maxDynamoKeyBytes)
	}
	for i := range ops {
		op := &ops[i]
		op.pk = dynamoPK(kindKey, ns, op.key)
		if len(op.pk) > maxDynamoKeyBytes {
			return nil, fmt.Errorf("key %q of %d bytes; DynamoDB keys hold at most %d with the namespace", trimKey(op.key), len(op.key), maxDynamoKeyBytes)
		}
		if n := len(op.pk) + len(op.value) + lockRef + dynamoItemOverhead; n > maxDynamoItemBytes {
			return nil, fmt.Errorf("value of %q: %d bytes do not fit in a DynamoDB item (%d bytes at most, key included)", trimKey(op.key), len(op.value), maxDynamoItemBytes)
		}
	}
	return ops, nil
}

// trimKey shortens a key for an error message.
func trimKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "…"
	}
	return k
}

// validate checks a read-only commit without locking: every key still at
// the version read. Versions only grow, and every check follows every
// read, so each key held its version through a moment common to all of
// them: the reads were consistent.
func (d *Dynamo) validate(ctx context.Context, ops []dynOp) error {
	return forEach(ctx, len(ops), func(ctx context.Context, i int) error {
		e, err := d.entry(ctx, ops[i].pk, ops[i].key)
		if err == nil && e.Version != ops[i].version {
			err = ErrConflict
		}
		return err
	})
}

// writeOne is the fast path: one key written (and maybe read) in one
// conditional update, unless a transaction holds it.
func (d *Dynamo) writeOne(ctx context.Context, op dynOp, id string) error {
	update, vals := applyUpdate(op, id, false)
	// The tx condition makes a blind write fail, like any other, when an
	// SDK retry repeats it after it landed: it must not apply twice.
	cond := "attribute_not_exists(#lk) AND (attribute_not_exists(#tx) OR #tx <> :id)" + versionCond(op, vals)
	for range dynamoAttempts {
		err := d.update(ctx, op.pk, update, cond, vals)
		if !conditionFailed(err) {
			return err
		}
		// Why? DynamoDB can return the item with the failure
		// (ReturnValuesOnConditionCheckFailure), but not every server
		// that speaks its API can.
		it, err := d.item(ctx, op.pk)
		switch {
		case err != nil:
			return err
		case it.tx == id:
			return nil // an SDK retry whose first try had landed
		case op.read && it.version > op.version:
			return ErrConflict
		case it.lk != "":
			if err := d.resolve(ctx, op.key, op.pk, it); err != nil {
				return err
			}
		case op.read && it.version != op.version:
			return ErrConflict
		}
	}
	return ErrConflict
}

// dynTx is one attempt at a transactional commit.
type dynTx struct {
	id  string
	rec []byte // the record's pk
}

func (d *Dynamo) transact(ctx context.Context, ns string, c *Commit, ops []dynOp) error {
	t := &dynTx{id: newTxID()}
	if c.Done != "" {
		t.rec = dynamoPK(kindDone, ns, c.Done)
	} else {
		t.rec = dynamoPK(kindTx, ns, t.id)
	}
	w := encodeOps(ops)
	if n := len(t.rec) + len(w) + len(c.Output) + dynamoItemOverhead; n > maxDynamoItemBytes {
		return fmt.Errorf("the commit's writes and output come to %d bytes; its record must fit in a DynamoDB item (%d bytes)", n, maxDynamoItemBytes)
	}
	now := d.now()
	lease := now.Add(d.lease).UnixMilli()
	rec := map[string]types.AttributeValue{
		"pk": avB(t.rec),
		"tx": avS(t.id),
		"st": avS(stPending),
		"lx": avN(lease),
	}
	if len(w) > 0 {
		rec["w"] = avB(w)
	}
	if len(c.Output) > 0 {
		rec["out"] = avB(c.Output)
	}
	if c.Done != "" {
		rec["dx"] = avN(now.Add(doneTTL(c.TTL)).UnixMilli())
	}
	if len(ops) == 0 {
		// Nothing to lock or apply: the record is committed as it lands.
		rec["st"] = avS(stCommitted)
		rec["exp"] = avN(ttlSeconds(now.Add(doneTTL(c.TTL)).UnixMilli()))
		return d.putRecord(ctx, t, rec)
	}
	rec["exp"] = avN(ttlSeconds(lease) + int64(dynamoRecordGrace/time.Second))
	if err := d.putRecord(ctx, t, rec); err != nil {
		return err
	}
	if err := d.step("record"); err != nil {
		return err
	}
	for i, op := range ops {
		if err := d.lock(ctx, t, op); err != nil {
			d.rollback(ctx, t, ops[:i+1])
			return err
		}
		if err := d.step("locked " + op.key); err != nil {
			return err
		}
	}
	if err := d.commitPoint(ctx, t); err != nil {
		if errors.Is(err, ErrConflict) {
			d.rollback(ctx, t, ops)
		}
		return err
	}
	if err := d.step("committed"); err != nil {
		return err
	}

	// The commit has taken effect. Applying it goes on even if the caller
	// has gone; an error here leaves locks that the next reader resolves
	// from the record and the next writer rolls forward, so it is not the
	// caller's error.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dynamoFinishTimeout)
	defer cancel()
	err := forEach(ctx, len(ops), func(ctx context.Context, i int) error {
		if err := d.step("apply " + ops[i].key); err != nil {
			return err
		}
		if err := d.rollForward(ctx, ops[i].pk, t.id, &ops[i]); err != nil {
			return err
		}
		return d.step("applied " + ops[i].key)
	})
	var died hookError
	if errors.As(err, &died) {
		return err
	}
	if err == nil {
		_ = d.finalize(ctx, t.rec, t.id, c.Done != "", now.Add(doneTTL(c.TTL)).UnixMilli())
	}
	return nil
}

// putRecord puts t's record, where there is none or it may be replaced.
func (d *Dynamo) putRecord(ctx context.Context, t *dynTx, rec map[string]types.AttributeValue) error {
	cond, vals := "attribute_not_exists(#pk)", map[string]types.AttributeValue{}
	for range dynamoAttempts {
		err := d.put(ctx, rec, cond, vals)
		if !conditionFailed(err) {
			return err
		}
		r, err := d.record(ctx, t.rec)
		now := d.now().UnixMilli()
		switch {
		case err != nil:
			return err
		case !r.exists:
			cond, vals = "attribute_not_exists(#pk)", map[string]types.AttributeValue{}
		case r.tx == t.id:
			return nil // an SDK retry whose first try had landed
		case r.committed && now < r.expires:
			return ErrDuplicate
		case r.committed:
			// An expired idempotency record. Its commit may still be
			// applying: finish it, so that none of its writes is lost
			// with the record, then take its place.
			if err := d.finish(ctx, r); err != nil {
				return err
			}
			cond, vals = "#tx = :old", map[string]types.AttributeValue{":old": avS(r.tx)}
		case r.lease < now:
			if err := d.abort(ctx, r); err != nil {
				return err
			}
			cond, vals = "attribute_not_exists(#pk)", map[string]types.AttributeValue{}
		default:
			return ErrConflict // the same invocation is committing elsewhere
		}
	}
	return ErrConflict
}

// lock makes t the holder of op's key, if its version is still the one
// read.
func (d *Dynamo) lock(ctx context.Context, t *dynTx, op dynOp) error {
	vals := map[string]types.AttributeValue{":id": avS(t.id), ":rec": avB(t.rec)}
	cond := "(attribute_not_exists(#lk) OR #lk = :id)" + versionCond(op, vals)
	for range dynamoAttempts {
		err := d.update(ctx, op.pk, "SET #lk = :id, #lr = :rec", cond, vals)
		if !conditionFailed(err) {
			return err
		}
		it, err := d.item(ctx, op.pk)
		switch {
		case err != nil:
			return err
		case it.lk == t.id:
			// Ours: an SDK retry whose first try had landed. While we hold
			// it nobody else can change the version.
			return nil
		case op.read && it.version > op.version:
			return ErrConflict
		case it.lk != "":
			if err := d.resolve(ctx, op.key, op.pk, it); err != nil {
				return err
			}
		case op.read && it.version != op.version:
			return ErrConflict
		}
	}
	return ErrConflict
}

// commitPoint marks t's record committed: from here on t's writes are the
// committed state, whoever applies them.
func (d *Dynamo) commitPoint(ctx context.Context, t *dynTx) error {
	vals := map[string]types.AttributeValue{":c": avS(stCommitted), ":p": avS(stPending), ":id": avS(t.id)}
	err := d.update(ctx, t.rec, "SET #st = :c REMOVE #exp", "#st = :p AND #tx = :id", vals)
	if !conditionFailed(err) {
		return err
	}
	r, err := d.record(ctx, t.rec)
	if err != nil {
		return err
	}
	if r.exists && r.tx == t.id && r.committed {
		return nil // an SDK retry whose first try had landed
	}
	// Another committer found our lease expired and aborted us.
	return ErrConflict
}

// rollback undoes an attempt before its commit point: the record goes,
// then the locks. Errors are dropped: what stays behind is pending and
// cleared by the next committer after the lease.
func (d *Dynamo) rollback(ctx context.Context, t *dynTx, ops []dynOp) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dynamoFinishTimeout)
	defer cancel()
	vals := map[string]types.AttributeValue{":id": avS(t.id), ":p": avS(stPending)}
	if err := d.del(ctx, t.rec, "#tx = :id AND #st = :p", vals); err != nil && !conditionFailed(err) {
		// A lock goes only once its record is committed or gone; these
		// wait for an abort after the lease.
		return
	}
	_ = forEach(ctx, len(ops), func(ctx context.Context, i int) error { return d.unlock(ctx, ops[i].pk, t.id) })
}

// resolve clears the lock of another transaction on key, or reports
// ErrConflict when that transaction is live and undecided.
func (d *Dynamo) resolve(ctx context.Context, key string, pk []byte, it dynItem) error {
	r, err := d.record(ctx, it.lr)
	if err != nil {
		return err
	}
	now := d.now().UnixMilli()
	switch {
	case !r.exists || r.tx != it.lk:
		// Aborted, or finished and its record gone: a stale lock.
		return d.unlock(ctx, pk, it.lk)
	case r.committed:
		ops, err := r.ops()
		if err != nil {
			return err
		}
		if i, ok := findOp(ops, key); ok {
			err = d.rollForward(ctx, pk, r.tx, &ops[i])
		} else {
			err = d.unlock(ctx, pk, it.lk) // finalized, so applied: a stale lock
		}
		if err == nil && r.lease < now {
			// Its committer seems to have died while applying: finish
			// the whole transaction, which also retires its record.
			err = d.finish(ctx, r)
		}
		return err
	case r.lease < now:
		return d.abort(ctx, r)
	}
	return ErrConflict
}

// rollForward applies transaction id's op on its key and unlocks it,
// unless that was done already.
func (d *Dynamo) rollForward(ctx context.Context, pk []byte, id string, op *dynOp) error {
	if op.kind == opRead {
		return d.unlock(ctx, pk, id)
	}
	update, vals := applyUpdate(*op, id, true)
	// tx <> :id: a lock that a late duplicate request put back after the
	// apply must not apply the write twice.
	err := d.update(ctx, pk, update, "#lk = :id AND (attribute_not_exists(#tx) OR #tx <> :id)", vals)
	if conditionFailed(err) {
		return d.unlock(ctx, pk, id)
	}
	return err
}

// unlock removes transaction id's lock from a key, if it is still there.
func (d *Dynamo) unlock(ctx context.Context, pk []byte, id string) error {
	err := d.update(ctx, pk, "REMOVE #lk, #lr", "#lk = :id", map[string]types.AttributeValue{":id": avS(id)})
	if conditionFailed(err) {
		return nil
	}
	return err
}

// finish applies every write of committed record r and then finalizes it.
func (d *Dynamo) finish(ctx context.Context, r dynRecord) error {
	ops, err := r.ops()
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil // finalized already
	}
	ns, err := pkNamespace(r.pk)
	if err != nil {
		return err
	}
	err = forEach(ctx, len(ops), func(ctx context.Context, i int) error {
		return d.rollForward(ctx, dynamoPK(kindKey, ns, ops[i].key), r.tx, &ops[i])
	})
	if err != nil {
		return err
	}
	return d.finalize(ctx, r.pk, r.tx, r.pk[0] == kindDone, r.expires)
}

// finalize retires the record of a transaction whose writes are all
// applied: a plain record goes; an idempotency record drops the writes
// and keeps the output until it expires (unix ms), when DynamoDB's TTL
// may remove it.
func (d *Dynamo) finalize(ctx context.Context, rec []byte, id string, done bool, expires int64) error {
	vals := map[string]types.AttributeValue{":id": avS(id), ":c": avS(stCommitted)}
	var err error
	if done {
		vals[":exp"] = avN(ttlSeconds(expires))
		err = d.update(ctx, rec, "SET #exp = :exp REMOVE #w", "#tx = :id AND #st = :c", vals)
	} else {
		err = d.del(ctx, rec, "#tx = :id AND #st = :c", vals)
	}
	if conditionFailed(err) {
		return nil
	}
	return err
}

// abort deletes the record of a pending transaction whose lease has
// passed, so it can never commit, and removes its locks.
func (d *Dynamo) abort(ctx context.Context, r dynRecord) error {
	vals := map[string]types.AttributeValue{":id": avS(r.tx), ":p": avS(stPending), ":now": avN(d.now().UnixMilli())}
	err := d.del(ctx, r.pk, "#tx = :id AND #st = :p AND #lx < :now", vals)
	if conditionFailed(err) {
		return nil // it committed or went meanwhile: the caller looks again
	}
	if err != nil {
		return err
	}
	ops, err := r.ops()
	if err != nil {
		return err
	}
	ns, err := pkNamespace(r.pk)
	if err != nil {
		return err
	}
	return forEach(ctx, len(ops), func(ctx context.Context, i int) error {
		return d.unlock(ctx, dynamoPK(kindKey, ns, ops[i].key), r.tx)
	})
}

// Done implements Store.
func (d *Dynamo) Done(ctx context.Context, ns, id string) ([]byte, bool, error) {
	if d.closed.Load() {
		return nil, false, d.wrap("done", ns, id, ErrClosed)
	}
	r, err := d.record(ctx, dynamoPK(kindDone, ns, id))
	if err != nil {
		return nil, false, d.wrap("done", ns, id, err)
	}
	if !r.exists || !r.committed || d.now().UnixMilli() >= r.expires {
		return nil, false, nil
	}
	return r.out, true, nil
}

// Close implements Store. Calls made after it fail with ErrClosed; the
// SDK's idle connections close on their own.
func (d *Dynamo) Close() error {
	d.closed.Store(true)
	return nil
}

func (d *Dynamo) wrap(op, ns, key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("state %s in %s: %w", describe(op, ns, key), d.where, err)
}

// hookError is an error from the test hook: the committer "died".
type hookError struct{ error }

func (e hookError) Unwrap() error { return e.error }

func (d *Dynamo) step(name string) error {
	if d.hook == nil {
		return nil
	}
	if err := d.hook(name); err != nil {
		return hookError{err}
	}
	return nil
}

// dynItem is a key item as stored.
type dynItem struct {
	version uint64
	hasV    bool
	value   []byte
	del     bool
	tx, lk  string
	lr      []byte
}

func (it dynItem) entry() Entry {
	if !it.hasV || it.del {
		return Entry{Version: it.version}
	}
	return Entry{Value: append([]byte{}, it.value...), Found: true, Version: it.version}
}

func (d *Dynamo) item(ctx context.Context, pk []byte) (dynItem, error) {
	m, err := d.get(ctx, pk)
	if err != nil || m == nil {
		return dynItem{}, err
	}
	var it dynItem
	if v, ok := m["v"].(*types.AttributeValueMemberN); ok {
		if it.version, err = strconv.ParseUint(v.Value, 10, 64); err != nil {
			return dynItem{}, fmt.Errorf("corrupt version %q", v.Value)
		}
		it.hasV = true
	}
	if v, ok := m["val"].(*types.AttributeValueMemberB); ok {
		it.value = v.Value
	}
	if v, ok := m["del"].(*types.AttributeValueMemberBOOL); ok {
		it.del = v.Value
	}
	it.tx, it.lk = str(m["tx"]), str(m["lk"])
	if v, ok := m["lr"].(*types.AttributeValueMemberB); ok {
		it.lr = v.Value
	}
	return it, nil
}

// dynRecord is a transaction or idempotency record as stored.
type dynRecord struct {
	exists    bool
	pk        []byte
	tx        string
	committed bool
	lease     int64 // unix ms
	expires   int64 // unix ms; idempotency records
	w         []byte
	out       []byte
}

func (r dynRecord) ops() ([]dynOp, error) { return decodeOps(r.w) }

func (d *Dynamo) record(ctx context.Context, pk []byte) (dynRecord, error) {
	m, err := d.get(ctx, pk)
	if err != nil || m == nil {
		return dynRecord{}, err
	}
	r := dynRecord{exists: true, pk: pk, tx: str(m["tx"]), committed: str(m["st"]) == stCommitted}
	if r.lease, err = num(m["lx"]); err == nil {
		r.expires, err = num(m["dx"])
	}
	if err != nil {
		return dynRecord{}, err
	}
	if v, ok := m["w"].(*types.AttributeValueMemberB); ok {
		r.w = v.Value
	}
	r.out = []byte{}
	if v, ok := m["out"].(*types.AttributeValueMemberB); ok {
		r.out = v.Value
	}
	return r, nil
}

// encodeOps is a record's write list: per key, in key order, the op byte,
// the key and, for a set, the value, each length-prefixed.
func encodeOps(ops []dynOp) []byte {
	n := 0
	for _, op := range ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(op.key) + len(op.value)
	}
	b := make([]byte, 0, n)
	for _, op := range ops {
		b = append(b, op.kind)
		b = binary.AppendUvarint(b, uint64(len(op.key)))
		b = append(b, op.key...)
		if op.kind == opSet {
			b = binary.AppendUvarint(b, uint64(len(op.value)))
			b = append(b, op.value...)
		}
	}
	return b
}

func decodeOps(b []byte) ([]dynOp, error) {
	var ops []dynOp
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		f := b[k : k+int(n)]
		b = b[k+int(n):]
		return f, true
	}
	for len(b) > 0 {
		op := dynOp{kind: b[0]}
		b = b[1:]
		key, ok := field()
		if !ok || (op.kind != opRead && op.kind != opSet && op.kind != opDelete) {
			return nil, errors.New("corrupt transaction record")
		}
		op.key = string(key)
		if op.kind == opSet {
			if op.value, ok = field(); !ok {
				return nil, errors.New("corrupt transaction record")
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// findOp finds key's op in a record's write list, which is in key order.
func findOp(ops []dynOp, key string) (int, bool) {
	return slices.BinarySearchFunc(ops, key, func(o dynOp, k string) int { return strings.Compare(o.key, k) })
}

// applyUpdate is the update that writes op for transaction id: the
// value, one more version, id as the last writer and, when unlock is
// set, no lock.
func applyUpdate(op dynOp, id string, unlock bool) (string, map[string]types.AttributeValue) {
	vals := map[string]types.AttributeValue{":zero": avN(0), ":one": avN(1), ":id": avS(id), ":del": &types.AttributeValueMemberBOOL{Value: op.kind == opDelete}}
	set := "SET #v = if_not_exists(#v, :zero) + :one, #tx = :id, #del = :del"
	var remove []string
	if op.kind == opSet && len(op.value) > 0 {
		set += ", #val = :val"
		vals[":val"] = avB(op.value)
	} else {
		// Not stored empty: not every DynamoDB-compatible server takes
		// an empty binary value.
		remove = append(remove, "#val")
	}
	if unlock {
		remove = append(remove, "#lk", "#lr")
	}
	if len(remove) > 0 {
		set += " REMOVE " + strings.Join(remove, ", ")
	}
	return set, vals
}

// versionCond is the condition, " AND …", that op's key is still at the
// version read, with its value added to vals.
func versionCond(op dynOp, vals map[string]types.AttributeValue) string {
	switch {
	case !op.read:
		return ""
	case op.version == 0:
		return " AND attribute_not_exists(#v)"
	}
	vals[":ver"] = avU(op.version)
	return " AND #v = :ver"
}

// exprNameRE finds the #name placeholders of an expression; each stands
// for the attribute of that name, so no attribute name can collide with
// one of DynamoDB's reserved words.
var exprNameRE = regexp.MustCompile(`#[a-z]+`)

func exprNames(exprs ...string) map[string]string {
	names := map[string]string{}
	for _, e := range exprs {
		for _, n := range exprNameRE.FindAllString(e, -1) {
			names[n] = n[1:]
		}
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

func (d *Dynamo) update(ctx context.Context, pk []byte, update, cond string, vals map[string]types.AttributeValue) error {
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &d.table,
		Key:                       map[string]types.AttributeValue{"pk": avB(pk)},
		UpdateExpression:          &update,
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  exprNames(update, cond),
		ExpressionAttributeValues: vals,
	})
	return err
}

func (d *Dynamo) put(ctx context.Context, item map[string]types.AttributeValue, cond string, vals map[string]types.AttributeValue) error {
	if len(vals) == 0 {
		vals = nil
	}
	_, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &d.table,
		Item:                      item,
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  exprNames(cond),
		ExpressionAttributeValues: vals,
	})
	return err
}

func (d *Dynamo) del(ctx context.Context, pk []byte, cond string, vals map[string]types.AttributeValue) error {
	_, err := d.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &d.table,
		Key:                       map[string]types.AttributeValue{"pk": avB(pk)},
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  exprNames(cond),
		ExpressionAttributeValues: vals,
	})
	return err
}

// get reads an item with a strongly consistent read; nil when absent.
func (d *Dynamo) get(ctx context.Context, pk []byte) (map[string]types.AttributeValue, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &d.table,
		Key:            map[string]types.AttributeValue{"pk": avB(pk)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// forEach runs f for 0..n-1, a few at a time, and returns the first
// error; the others see their context cancelled.
func forEach(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	if n == 1 {
		return f(ctx, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, dynamoParallel)
	)
	for i := range n {
		sem <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil {
		// Stopped early only when the caller's context ended.
		first = ctx.Err()
	}
	return first
}

func avB(b []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: b} }
func avS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func avN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func avU(n uint64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func num(v types.AttributeValue) (int64, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("corrupt number %q", n.Value)
	}
	return i, nil
}

// ttlSeconds is a DynamoDB TTL value, whole seconds, for an instant in
// unix milliseconds, rounded up.
func ttlSeconds(ms int64) int64 { return (ms + 999) / 1000 }
